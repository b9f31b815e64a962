"""Controlled vocabularies shared by models, forms, filters and the demo data.

Codes are stored; labels are shown. Labels are Chinese message ids so that the Chinese UI
needs no compiled catalogue; the English catalogue translates them.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

ORG_KINDS = {"enterprise": _l("企业"), "institution": _l("培训机构")}

ORG_STATUSES = {
    "pending": _l("待审核"),
    "approved": _l("已通过"),
    "rejected": _l("已驳回"),
    "suspended": _l("已暂停"),
}

INSTITUTION_CATEGORIES = {
    "vocational_skill": _l("职业技能类"),
    "professional_technical": _l("专业技术类"),
}

INDUSTRIES = {
    "finance": _l("金融与商务服务（CBD）"),
    "internet": _l("互联网与软件信息（望京）"),
    "logistics": _l("航空物流与供应链"),
    "hospitality": _l("酒店与餐饮"),
    "elderly_care": _l("养老与健康服务"),
    "property": _l("物业管理"),
    "new_energy_vehicles": _l("新能源汽车"),
    "cultural_creative": _l("文化创意（798）"),
    "ecommerce": _l("电子商务与直播"),
    "manufacturing": _l("先进制造"),
    "construction": _l("建筑与安装"),
    "other": _l("其他"),
}

# The 43 streets and areas (街道/地区) of Chaoyang District.
CHAOYANG_AREAS = (
    "建外街道", "朝外街道", "呼家楼街道", "三里屯街道", "左家庄街道", "香河园街道",
    "和平街街道", "安贞街道", "亚运村街道", "小关街道", "酒仙桥街道", "麦子店街道",
    "团结湖街道", "六里屯街道", "八里庄街道", "双井街道", "劲松街道", "潘家园街道",
    "垡头街道", "首都机场街道", "大屯街道", "望京街道", "奥运村街道", "东湖街道",
    "南磨房地区", "高碑店地区", "将台地区", "太阳宫地区", "小红门地区", "十八里店地区",
    "平房地区", "东风地区", "来广营地区", "常营地区", "三间房地区", "管庄地区",
    "金盏地区", "孙河地区", "崔各庄地区", "东坝地区", "黑庄户地区", "豆各庄地区",
    "王四营地区",
)
DISTRICTS = {area: area for area in CHAOYANG_AREAS}

# National vocational skill levels (国家职业技能等级) and professional-technical titles.
# ``rank`` orders them for level-fit: higher is more advanced.
SKILL_LEVELS = {
    "L5": _l("五级/初级工"),
    "L4": _l("四级/中级工"),
    "L3": _l("三级/高级工"),
    "L2": _l("二级/技师"),
    "L1": _l("一级/高级技师"),
    "T_JUNIOR": _l("初级职称（员级/助理级）"),
    "T_INTERMEDIATE": _l("中级职称"),
    "T_SENIOR": _l("高级职称"),
}
SKILL_LEVEL_RANK = {
    "L5": 1, "L4": 2, "L3": 3, "L2": 4, "L1": 5,
    "T_JUNIOR": 2, "T_INTERMEDIATE": 3, "T_SENIOR": 5,
}

TRAINING_MODES = {"offline": _l("线下"), "online": _l("线上"), "blended": _l("混合")}

CERTIFICATE_KINDS = {
    "skill_level": _l("职业技能等级证书"),
    "special_operation": _l("特种作业操作证"),
    "professional_qualification": _l("专业技术资格"),
    "none": _l("无证书"),
}

DEMAND_STATUSES = {
    "draft": _l("草稿"),
    "open": _l("征集中"),
    "closed": _l("已关闭"),
    "archived": _l("已归档"),
}

PROGRAMME_STATUSES = {
    "draft": _l("草稿"),
    "published": _l("已发布"),
    "archived": _l("已归档"),
}

ROLES = {
    "org_admin": _l("机构管理员"),
    "org_member": _l("机构成员"),
    "staff": _l("协会工作人员"),
    "admin": _l("系统管理员"),
}
ORG_ROLES = ("org_admin", "org_member")
ASSOCIATION_ROLES = ("staff", "admin")


def label(vocabulary: dict, code: str | None) -> str:
    """Return the display label of ``code``, or the code itself if it is unknown."""
    if code is None:
        return ""
    return str(vocabulary.get(code, code))
