"""Chinese labels for what the matching engine explains: match levels, requirement statuses,
features, notes, requirement and evidence kinds. The engine speaks codes; pages speak
sentences."""
from __future__ import annotations

import math

from flask_babel import lazy_gettext as _l

# matching.calibration.LEVELS: what a calibrated probability above each bound is called.
LEVEL_LABELS = {
    "high": _l("高度匹配"),
    "good": _l("较匹配"),
    "partial": _l("部分匹配"),
}

# matching.types.Coverage.status
STATUS_LABELS = {
    "covered": _l("已覆盖"),
    "partial": _l("部分覆盖"),
    "uncovered": _l("未覆盖"),
}

# matching.features.FEATURES, grouped by what a member can understand of them.
FEATURE_LABELS = {
    "dense_profile": _l("项目整体内容与需求的语义相似度"),
    "dense_profile_z": _l("项目整体内容相似度（相对其他项目）"),
    "dense_title": _l("项目名称与岗位名称的语义相似度"),
    "dense_title_z": _l("项目名称相似度（相对其他项目）"),
    "dense_title_profile": _l("岗位名称与项目内容的相似度"),
    "dense_profile_title": _l("需求内容与项目名称的相似度"),
    "req_maxsim_mean": _l("各项要求的平均满足程度"),
    "req_maxsim_skill": _l("技能标签的满足程度"),
    "req_maxsim_module": _l("课程模块对要求的满足程度"),
    "req_maxsim_top": _l("最契合要求的满足程度"),
    "req_coverage": _l("要求覆盖比例"),
    "profile_unit_max": _l("与需求最接近的课程内容"),
    "profile_unit_top3": _l("与需求最接近的几项课程内容"),
    "title_unit_max": _l("与岗位名称最接近的课程内容"),
    "unit_back_mean": _l("课程内容与需求的整体相关度"),
    "bm25_all_rel": _l("关键词整体匹配"),
    "bm25_all_z": _l("关键词整体匹配（相对其他项目）"),
    "bm25_title_rel": _l("项目名称关键词匹配"),
    "bm25_description_rel": _l("项目简介关键词匹配"),
    "bm25_skills_rel": _l("技能标签关键词匹配"),
    "bm25_modules_rel": _l("课程模块关键词匹配"),
    "bm25_qtitle_rel": _l("岗位名称关键词匹配"),
    "lex_req_overlap": _l("要求与课程的字面重合"),
    "lex_title_overlap": _l("名称的字面重合"),
    "rank_dense": _l("语义检索排名"),
    "rank_lexical": _l("关键词检索排名"),
    "neighbour_hybrid_mean": _l("相近项目的综合匹配"),
    "neighbour_hybrid_max": _l("最相近项目的综合匹配"),
    "dense_prf_z": _l("扩展需求后的语义相似度"),
    "title_prf_z": _l("扩展岗位名称后的相似度"),
    "req_profile_mean": _l("各项要求与项目整体的相似度"),
    "req_title_max": _l("要求与项目名称的最高相似度"),
    "description_profile": _l("需求说明与项目内容的相似度"),
    "description_unit_max": _l("需求说明与课程内容的最高相似度"),
    "unit_centroid_profile": _l("课程内容整体与需求的相似度"),
    "level_below_role": _l("培训层次低于专业技术岗位所需"),
}
GENERIC_FEATURE = _l("其他匹配因素")

NOTE_SENTENCES = {
    "level_mismatch": _l("技能等级与需求相差两级以上。"),
    "mode_mismatch": _l("培训方式与需求不一致（线上/线下）。"),
    "district_mismatch": _l("培训地点与需求所在街道不同。"),
    "capacity_below_headcount": _l("项目招生人数少于需求人数。"),
    "level_below_role": _l("该岗位属专业技术岗位，通常需要高职专科及以上层次的培养，本项目层次较低。"),
    "standing:suspended": _l("该培训机构已被协会暂停。"),
}

REQUIREMENT_KINDS = {"duty": _l("岗位职责"), "requirement": _l("任职要求"), "skill": _l("技能")}
EVIDENCE_KINDS = {
    "title": _l("项目名称"),
    "profile": _l("项目简介"),
    "skill": _l("技能标签"),
    "module": _l("课程模块"),
    "outcome": _l("学习成果"),
    "certificate": _l("证书"),
}


def level_label(code: str | None) -> str:
    """The name of a match level; empty for a pair below the threshold (no level)."""
    return str(LEVEL_LABELS.get(code or "", ""))


def status_label(code: str | None) -> str:
    """已覆盖 / 部分覆盖 / 未覆盖 for a requirement's coverage status."""
    return str(STATUS_LABELS.get(code or "", STATUS_LABELS["uncovered"]))


def probability_percent(probability: float) -> int:
    """A probability as a whole percentage for people, rounded down (so that the number shown
    reaches a level's bound exactly when the probability does) and kept within 1..99: a
    calibration fitted on a finite set of judged pairs cannot justify showing certainty."""
    return max(1, min(99, math.floor(float(probability) * 100 + 1e-9)))


def feature_label(name: str) -> str:
    """The Chinese label of a ranker feature, or a generic one for names added later."""
    return str(FEATURE_LABELS.get(name, GENERIC_FEATURE))


def note_sentence(code: str) -> str | None:
    """A sentence for a prior the engine applied; None for notes nobody needs to read."""
    if code in NOTE_SENTENCES:
        return str(NOTE_SENTENCES[code])
    if code.startswith("standing:"):
        standing = code.split(":", 1)[1]
        if standing == "good":
            return None  # the default standing says nothing worth reading
        from flask_babel import gettext as _

        return _("培训机构评级：%(grade)s。", grade=standing)
    return None


def requirement_kind(code: str | None) -> str:
    return str(REQUIREMENT_KINDS.get(code or "", code or ""))


def evidence_kind(code: str | None) -> str:
    return str(EVIDENCE_KINDS.get(code or "", code or ""))
