"""A live catalogue: upserts and removals applied in place, statistics refreshed on demand.

After :meth:`Matcher.refresh_statistics` every result must equal a fresh matcher's on the same
final records; between refreshes (at most the recommended number of changes) each demand's top
10 must share at least 9 programmes with a full rebuild's.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.cache import MemoryVectorStore, namespace
from matching.errors import InputError
from matching.lexical import BM25, tokenize
from matching.pipeline import REFRESH_EVERY_CHANGES, Matcher, MissingVectors, _ByteLRU
from matching.types import Demand, Module, Programme
from matching.vectors import StackedVectors

# ---------------------------------------------------------------------------- a small catalogue

TRADES = {
    "养老护理": (["老年人生活照料", "基础护理技术", "康复护理", "失智照护", "安宁疗护", "养老机构管理"],
             ["协助卧床老人翻身", "压疮预防", "生命体征测量", "助餐助浴", "老人心理疏导"]),
    "新能源汽车维修": (["高压安全防护", "动力电池检修", "驱动电机检修", "整车控制系统", "充电设施维护", "故障诊断"],
                ["电池包拆装", "绝缘检测", "故障码读取", "电控系统调试", "充电桩检修"]),
    "直播电商": (["直播策划", "主播话术", "短视频剪辑", "网店运营", "数据分析", "选品与供应链"],
             ["直播间搭建", "商品讲解", "流量投放", "直播复盘", "粉丝运营"]),
    "电工": (["电工基础", "低压电器安装", "照明线路敷设", "电气故障排查", "配电柜维护", "安全用电"],
           ["电动机控制接线", "触电急救", "兆欧表使用", "配电室巡检", "线路检修"]),
    "中式烹调": (["原料加工与刀工", "热菜烹调", "冷菜制作", "面点制作", "餐饮食品安全", "宴席设计"],
             ["火候控制", "菜肴调味", "食材初加工", "厨房卫生管理", "菜品装盘"]),
    "育婴": (["婴幼儿生活照料", "婴幼儿保健", "早期教育", "辅食制作", "常见病护理", "亲子活动"],
           ["婴幼儿喂养", "意外伤害预防", "生长发育观察", "婴儿抚触", "睡眠照护"]),
    "焊接": (["焊接安全", "焊条电弧焊", "二氧化碳气体保护焊", "氩弧焊", "焊接识图", "焊缝检验"],
           ["平焊立焊操作", "焊接参数调整", "坡口加工", "焊缝外观检查", "焊机维护"]),
    "数控加工": (["机械识图", "数控编程", "数控车床操作", "数控铣床操作", "量具使用", "工艺规划"],
             ["代码编程", "对刀操作", "零件测量", "刀具选择", "加工质量控制"]),
    "物流仓储": (["仓储管理", "配送调度", "叉车操作", "物流信息系统", "库存控制", "供应链基础"],
             ["入库验收", "拣货包装", "库存盘点", "叉车安全驾驶", "运单处理"]),
    "会计": (["会计基础", "财务软件应用", "税费计算与申报", "成本核算", "出纳实务", "财务报表分析"],
           ["凭证录入", "纳税申报", "银行对账", "成本分析", "报表编制"]),
    "美容美发": (["美发基础", "剪发造型", "烫发染发", "皮肤护理", "化妆技术", "店务管理"],
             ["发型设计", "头皮护理", "面部护理", "新娘化妆", "顾客接待"]),
    "家政服务": (["家庭保洁", "衣物洗涤熨烫", "家庭烹饪", "母婴护理", "家用电器使用", "家政服务礼仪"],
             ["居室清洁", "衣物收纳", "家常菜制作", "产妇护理", "客户沟通"]),
}
TRADE_NAMES = list(TRADES)
LEVELS = ["初级", "中级", "高级", "四级", "五级"]
DISTRICTS = ["朝阳区", "海淀区", "丰台区", "通州区", "大兴区", "西城区"]
VERBS = ["能规范完成", "能独立开展", "熟练掌握", "能按标准进行", "能在指导下完成"]


def make_programme(pid: str, seed: int) -> Programme:
    """A programme of one trade, its modules and skills drawn from the trade's word lists."""
    rng = random.Random(seed)
    trade = TRADE_NAMES[seed % N_TRADES]
    mods, skills = TRADES[trade]
    m = rng.sample(mods, 4)
    s = rng.sample(skills, 3)
    level = rng.choice(LEVELS)
    return Programme(
        id=pid,
        title=f"{trade}{level}培训班",
        description=f"面向{rng.choice(DISTRICTS)}企业，培养掌握{m[0]}和{m[1]}的{trade}从业人员。",
        modules=tuple(Module(f"{name}{rng.choice(['', '实训', '理论与实践'])}", rng.choice([16, 24, 32])) for name in m),
        outcomes=(f"能够完成{s[0]}和{s[1]}",),
        skills=tuple(f"{rng.choice(VERBS)}{x}" for x in s),
        certificates=(f"职业技能等级证书：{trade}（{level}）",) if rng.random() < 0.7 else (),
        level=level,
        mode=rng.choice(["线下", "线上", "混合"]),
        district=rng.choice(DISTRICTS),
        capacity=rng.choice([20, 30, 50]),
        institution_id=f"inst-{seed % 9}",
    )


def make_demand(did: str, seed: int) -> Demand:
    rng = random.Random(10_000 + seed)
    trade = TRADE_NAMES[seed % N_TRADES]
    mods, skills = TRADES[trade]
    s = rng.sample(skills, 3)
    return Demand(
        id=did,
        title=f"招聘{trade}人员",
        description=f"本企业需要{rng.randint(2, 20)}名{trade}人员。",
        duties=tuple(f"负责{x}相关工作" for x in s) + (f"熟悉{rng.choice(mods)}",),
        skills=(s[0],),
        skill_level=rng.choice(LEVELS),
        headcount=rng.randint(1, 10),
        district=rng.choice(DISTRICTS),
        mode="线下",
    )


# Eight trades of ten programmes: a demand's top 10 is then mostly its own trade, not the
# near-tied off-trade tail whose order any change of statistics reshuffles.
N_TRADES = 8
CATALOGUE = [make_programme(f"p{i:03d}", i) for i in range(80)]
DEMANDS = [make_demand(f"d{i:03d}", i) for i in range(12)]
QUERIES = DEMANDS[:6] + [make_demand("d-unindexed", 5)]


def edit(p: Programme, kind: int, salt: int) -> Programme:
    """One edit a provider makes: rename a module, add a skill, change the title."""
    rng = random.Random(salt)
    trade = TRADE_NAMES[rng.randrange(len(TRADE_NAMES))]
    mods, skills = TRADES[trade]
    if kind == 0 and p.modules:
        i = rng.randrange(len(p.modules))
        modules = list(p.modules)
        modules[i] = Module(rng.choice(mods), modules[i].hours)
        return dataclasses.replace(p, modules=tuple(modules))
    if kind == 1:
        return dataclasses.replace(p, skills=(*p.skills, f"能够{rng.choice(skills)}"))
    return dataclasses.replace(p, title=f"{trade}{rng.choice(LEVELS)}专项培训")


class HashingEncoder:
    """A deterministic stand-in for a sentence encoder: a text's vector is the normalised sum of
    fixed random vectors of its character bigrams, so texts sharing words are similar."""

    name = "hashing-64"
    dim = 64

    def _vec(self, text: str, salt: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float64)
        grams = [text[i : i + 2] for i in range(max(len(text) - 1, 1))]
        for g in grams:
            seed = int.from_bytes(hashlib.blake2b((salt + g).encode(), digest_size=8).digest(), "big")
            v += np.random.default_rng(seed).standard_normal(self.dim)
        return (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self._vec(t, "") for t in texts], dtype=np.float32).reshape(len(texts), self.dim)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_queries(texts)


ENCODER = HashingEncoder()
STORE = MemoryVectorStore()  # shared, so each text is hashed once per session


def matcher(dense: bool, **kwargs: object) -> Matcher:
    if dense:
        return Matcher(encoder=ENCODER, store=STORE, **kwargs)  # type: ignore[arg-type]
    return Matcher(encoder=None, **kwargs)  # type: ignore[arg-type]


def fresh(dense: bool, programmes: dict[str, Programme], demands: dict[str, Demand], **kwargs: object) -> Matcher:
    m = matcher(dense, **kwargs)
    # Given in another order than they were added: the result must not depend on it.
    m.index_programmes(sorted(programmes.values(), key=lambda p: p.title + p.id, reverse=True))
    if demands:
        m.index_demands(list(demands.values())[::-1])
    return m


# ---------------------------------------------------------------------------- edit sequences

op = st.one_of(
    st.tuples(st.just("new"), st.integers(0, 10_000)),
    st.tuples(st.just("edit"), st.integers(0, 10_000), st.integers(0, 2), st.integers(0, 10_000)),
    st.tuples(st.just("remove"), st.integers(0, 10_000)),
    st.tuples(st.just("demand"), st.integers(0, 10_000)),
    st.tuples(st.just("remove_demand"), st.integers(0, 10_000)),
)


def apply(m: Matcher, ops: list[tuple], programmes: dict[str, Programme], demands: dict[str, Demand],
          refresh_every: int | None = None) -> None:
    """Apply ``ops`` to ``m`` and to the record dictionaries; refresh when due."""
    for n, (kind, a, *rest) in enumerate(ops):
        ids = sorted(programmes)
        if kind == "new":
            p = make_programme(f"new{n:03d}-{a}", a)
            programmes[p.id] = p
            m.upsert_programmes([p])
        elif kind == "edit" and ids:
            p = edit(programmes[ids[a % len(ids)]], rest[0], rest[1])
            programmes[p.id] = p
            m.upsert_programmes([p])
        elif kind == "remove" and len(ids) > 10:
            pid = ids[a % len(ids)]
            del programmes[pid]
            m.remove_programmes([pid, "no-such-programme"])
        elif kind == "demand":
            dids = sorted(demands)
            did = dids[a % len(dids)] if a % 2 and dids else f"dnew{n:03d}"
            d = make_demand(did, a)
            demands[did] = d
            m.upsert_demands([d])
        elif kind == "remove_demand" and len(demands) > 3:
            did = sorted(demands)[a % len(demands)]
            del demands[did]
            m.remove_demands([did])
        if refresh_every is not None and m.pending_changes >= refresh_every:
            m.refresh_statistics()


def assert_same_results(got: Matcher, want: Matcher, programmes: dict[str, Programme]) -> None:
    for d in QUERIES:
        a, b = got.match_demand(d, k=10), want.match_demand(d, k=10)
        assert [x.programme_id for x in a] == [x.programme_id for x in b]
        for x, y in zip(a, b):
            assert x.score == pytest.approx(y.score, abs=1e-9)
            assert (x.probability, x.level, x.rank) == (y.probability, y.level, y.rank)
        assert a == b  # explanations included
        assert got.bundles(d) == want.bundles(d)
        ca, Xa, _, _ = got.candidate_features(d)
        cb, Xb, _, _ = want.candidate_features(d)
        assert [got._index.programmes[c].id for c in ca] == [want._index.programmes[c].id for c in cb]
        np.testing.assert_allclose(Xa, Xb, rtol=0, atol=1e-9)
    for pid in sorted(programmes)[::7]:
        assert got.match_programme(pid, k=5) == want.match_programme(pid, k=5)


@pytest.mark.parametrize("dense", [False, True], ids=["lexical", "dense"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=14))
def test_after_refresh_results_equal_a_fresh_index(dense: bool, ops: list[tuple]) -> None:
    programmes = {p.id: p for p in CATALOGUE}
    demands = {d.id: d for d in DEMANDS}
    m = matcher(dense)
    m.index_programmes(CATALOGUE)
    m.index_demands(DEMANDS)
    apply(m, ops, programmes, demands, refresh_every=5)
    m.refresh_statistics()
    assert m.pending_changes == 0
    assert_same_results(m, fresh(dense, programmes, demands), programmes)


@pytest.mark.parametrize("dense", [False, True], ids=["lexical", "dense"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=REFRESH_EVERY_CHANGES + 8))
def test_between_refreshes_top_ten_stays_close(dense: bool, ops: list[tuple]) -> None:
    programmes = {p.id: p for p in CATALOGUE}
    demands = {d.id: d for d in DEMANDS}
    m = matcher(dense)
    m.index_programmes(CATALOGUE)
    m.index_demands(DEMANDS)
    every = m.refresh_interval()
    assert every == REFRESH_EVERY_CHANGES  # a small catalogue: the floor
    # Refreshed once more than ``every`` changes are pending, so at most ``every`` remain.
    apply(m, ops, programmes, demands, refresh_every=every + 1)
    assert m.pending_changes <= every
    full = fresh(dense, programmes, demands)
    for d in QUERIES:
        got = {x.programme_id for x in m.match_demand(d, k=10, explain=False)}
        want = {x.programme_id for x in full.match_demand(d, k=10, explain=False)}
        assert len(got & want) >= 9, (d.id, sorted(got - want), sorted(want - got))


# ---------------------------------------------------------------------------- unit tests

WELDING_ROBOT = Programme(
    id="p-robot",
    title="焊接机器人编程与操作",
    description="学习焊接机器人示教编程、离线编程和工作站维护。",
    modules=(Module("焊接机器人示教编程", 32), Module("机器人工作站维护", 16)),
    skills=("能完成焊接机器人轨迹示教",),
    level="中级",
    institution_id="inst-robot",
)
ROBOT_DEMAND = Demand(id="d-robot", title="焊接机器人操作员", duties=("焊接机器人示教编程与调试",))


def test_upsert_of_an_unknown_id_adds_it() -> None:
    m = matcher(False)
    m.index_programmes(CATALOGUE)
    assert m.match_demand(ROBOT_DEMAND, k=1)[0].programme_id != "p-robot"
    m.upsert_programmes([WELDING_ROBOT])
    assert m.match_demand(ROBOT_DEMAND, k=1)[0].programme_id == "p-robot"
    assert m.pending_changes == 1 and len(m._pos) == len(CATALOGUE) + 1


def test_upsert_of_a_known_id_replaces_it() -> None:
    m = matcher(False)
    m.index_programmes([*CATALOGUE, WELDING_ROBOT])
    m.index_demands(DEMANDS)
    assert m.match_demand(ROBOT_DEMAND, k=1)[0].programme_id == "p-robot"
    cooking = dataclasses.replace(make_programme("p-robot", 4), institution_id="inst-robot")
    m.upsert_programmes([cooking])
    matches = m.match_demand(ROBOT_DEMAND, k=len(CATALOGUE) + 1, explain=False)
    ids = [x.programme_id for x in matches]
    assert ids.count("p-robot") <= 1 and ids[0] != "p-robot"  # the old text no longer matches
    with pytest.raises(InputError, match="differs from the indexed version"):
        m.match_programme(WELDING_ROBOT)
    assert m.pair_features(ROBOT_DEMAND, ["p-robot"]).shape[0] == 1
    m.refresh_statistics()
    assert len(m._index.programmes) == len(CATALOGUE) + 1  # the old row compacted away


def test_removed_programmes_are_never_returned() -> None:
    m = matcher(False)
    m.index_programmes([*CATALOGUE, WELDING_ROBOT])
    m.index_demands([ROBOT_DEMAND, *DEMANDS])
    m.remove_programmes(["p-robot", "unknown"])
    assert m.pending_changes == 1
    assert "p-robot" not in {x.programme_id for x in m.match_demand(ROBOT_DEMAND, k=len(CATALOGUE))}
    with pytest.raises(InputError, match="not indexed"):
        m.match_programme("p-robot")
    cand, *_ = m.candidate_features(ROBOT_DEMAND, exclude=["p000"])
    assert not {m._index.programmes[c].id for c in cand} & {"p-robot", "p000"}
    m.remove_programmes(["p-robot"])  # again: nothing happens
    assert m.pending_changes == 1


def test_removing_every_programme_leaves_empty_answers() -> None:
    for dense in (False, True):
        m = matcher(dense)
        m.index_programmes(CATALOGUE[:5])
        m.index_demands(DEMANDS[:3])
        m.remove_programmes([p.id for p in CATALOGUE[:5]])
        assert m.match_demand(DEMANDS[0]) == [] and m.bundles(DEMANDS[0]) == []
        m.refresh_statistics()
        assert m.match_demand(DEMANDS[0]) == []
        m.upsert_programmes([WELDING_ROBOT])  # an empty catalogue indexes afresh
        assert m.match_demand(ROBOT_DEMAND, k=1)[0].programme_id == "p-robot"
        assert m.pending_changes == 0


def test_upsert_without_an_index_is_an_index() -> None:
    m = matcher(False)
    m.upsert_programmes(CATALOGUE[:20])
    m.upsert_demands(DEMANDS[:4])
    want = fresh(False, {p.id: p for p in CATALOGUE[:20]}, {d.id: d for d in DEMANDS[:4]})
    assert m.pending_changes == 0
    assert_same_results(m, want, {p.id: p for p in CATALOGUE[:20]})
    m.upsert_programmes([])
    assert m.pending_changes == 0
    with pytest.raises(InputError, match="duplicate"):
        m.upsert_programmes([CATALOGUE[0], CATALOGUE[0]])


def test_missing_vectors_change_nothing() -> None:
    store = MemoryVectorStore()
    full = Matcher(encoder=ENCODER, store=store)  # type: ignore[arg-type]
    full.index_programmes(CATALOGUE)
    full.index_demands(DEMANDS)
    worker = Matcher(encoder=ENCODER, store=store, encode_missing=False)  # type: ignore[arg-type]
    worker.index_programmes(CATALOGUE)
    worker.index_demands(DEMANDS)
    before = [worker.match_demand(d, k=5) for d in DEMANDS[:3]]
    sizes = (len(worker._index.programmes), len(worker._index.units.texts), worker._index.bm25_all.n_docs)
    with pytest.raises(MissingVectors) as info:
        worker.upsert_programmes([make_programme("p000", 3), WELDING_ROBOT])
    assert "焊接机器人轨迹示教" in "".join(next(iter(info.value.missing.values())).values())
    with pytest.raises(MissingVectors):
        worker.upsert_demands([ROBOT_DEMAND])
    assert worker.pending_changes == 0 and worker._pos["p000"] == 0
    assert (len(worker._index.programmes), len(worker._index.units.texts), worker._index.bm25_all.n_docs) == sizes
    assert [worker.match_demand(d, k=5) for d in DEMANDS[:3]] == before
    # Once the vectors are stored, the same upsert goes through without encoding.
    for ns, texts in worker.required_texts([WELDING_ROBOT], [ROBOT_DEMAND]).items():
        role = ns.rsplit("/", 1)[1]
        fn = ENCODER.encode_queries if role == "query" else ENCODER.encode_documents
        store.put_many(ns, dict(zip(texts, fn(list(texts.values())))))
    assert namespace(ENCODER.name, "document") in worker.required_texts([WELDING_ROBOT])
    worker.upsert_programmes([WELDING_ROBOT])
    worker.upsert_demands([ROBOT_DEMAND])
    assert worker.match_demand(ROBOT_DEMAND, k=1)[0].programme_id == "p-robot"
    assert worker.match_programme("p-robot", k=1)[0].demand_id == "d-robot"


def test_score_cache_is_bounded_in_bytes() -> None:
    m = matcher(False, score_cache_bytes=1)
    m.index_programmes(CATALOGUE)
    first = m.match_demand(DEMANDS[0], k=3)
    assert len(m._dscores) == 0 and m._dscores.nbytes == 0  # one entry exceeds the bound
    one = 2 * len(CATALOGUE) * 4 + 64  # bm25_all and hybrid float32 arrays, with room
    m = matcher(False, score_cache_bytes=2 * one)
    m.index_programmes(CATALOGUE)
    for d in DEMANDS[:3]:
        m.match_demand(d, k=3)
    assert len(m._dscores) == 2 and m._dscores.nbytes <= 2 * one
    assert DEMANDS[0].id not in m._dscores and DEMANDS[2].id in m._dscores  # least recent went first
    m.match_demand(DEMANDS[1], k=3)  # used again: now the most recent
    m.match_demand(DEMANDS[3], k=3)
    assert DEMANDS[1].id in m._dscores and DEMANDS[2].id not in m._dscores
    assert m.match_demand(DEMANDS[0], k=3) == first


def test_byte_lru_counts_and_evicts() -> None:
    c = _ByteLRU(100, max_items=3)
    for k in "abcd":
        c.put(k, k, 10)
    assert len(c) == 3 and "a" not in c and c.nbytes == 30
    c.get("b")
    c.put("e", "e", 75)
    assert "b" in c and "e" in c and c.nbytes <= 100
    c.pop("e")
    c.clear()
    assert len(c) == 0 and c.nbytes == 0


def test_caches_never_serve_a_stale_list() -> None:
    m = matcher(False)
    m.index_programmes(CATALOGUE)
    m.index_demands([ROBOT_DEMAND, *DEMANDS])
    assert m.match_programme("p007", k=3)  # fills the list cache
    m.match_demand(ROBOT_DEMAND)
    m.upsert_programmes([WELDING_ROBOT])
    assert m.match_demand(ROBOT_DEMAND, k=1)[0].programme_id == "p-robot"
    assert m.match_programme("p-robot", k=1)[0].demand_id == "d-robot"
    # An edited demand is ranked as edited; a removed one disappears from programmes' lists.
    welder = dataclasses.replace(ROBOT_DEMAND, title="中式热菜厨师", duties=("热菜烹调与火候控制",))
    m.upsert_demands([welder])
    assert "d-robot" not in {x.demand_id for x in m.match_programme("p-robot", k=5)}
    m.remove_demands(["d-robot"])
    assert "d-robot" not in {x.demand_id for x in m.match_programme("p004", k=20)}
    assert m.pending_changes == 3


def test_standing_changes_after_upserts() -> None:
    m = matcher(False)
    m.index_programmes(CATALOGUE)
    m.upsert_programmes([WELDING_ROBOT, edit(CATALOGUE[6], 2, 1)])
    m.set_standing({"inst-robot": "suspended"})
    assert "p-robot" not in {x.programme_id for x in m.match_demand(ROBOT_DEMAND, k=len(CATALOGUE))}
    m.set_standing({"inst-robot": "good"})
    assert m.match_demand(ROBOT_DEMAND, k=1)[0].programme_id == "p-robot"
    m.set_standing({"inst-robot": "suspended", "inst-6": "suspended"})
    m.upsert_programmes([dataclasses.replace(CATALOGUE[1], title="电工初级专项培训")])
    m.refresh_statistics()
    programmes = {p.id: p for p in CATALOGUE}
    programmes.update({"p-robot": WELDING_ROBOT, "p006": edit(CATALOGUE[6], 2, 1)})
    programmes["p001"] = dataclasses.replace(CATALOGUE[1], title="电工初级专项培训")
    want = fresh(False, programmes, {}, standing={"inst-robot": "suspended", "inst-6": "suspended"})
    for d in [ROBOT_DEMAND, *DEMANDS[:4]]:
        assert m.match_demand(d, k=10) == want.match_demand(d, k=10)
        ids = {x.programme_id for x in m.match_demand(d, k=len(programmes))}
        assert "p-robot" not in ids and not any(programmes[i].institution_id == "inst-6" for i in ids)


def test_refresh_is_due_after_enough_changes_or_time() -> None:
    m = matcher(False)
    m.index_programmes(CATALOGUE)
    assert m.pending_changes == 0 and not m.refresh_due() and m.statistics_age >= 0
    m.upsert_programmes([WELDING_ROBOT])
    assert not m.refresh_due() and m.refresh_due(max_changes=1)
    assert m.refresh_due(max_seconds=0.0) and not m.refresh_due(max_seconds=None)
    m.upsert_programmes([make_programme(f"x{i}", i) for i in range(REFRESH_EVERY_CHANGES)])
    assert m.refresh_due()
    m.refresh_statistics()
    assert m.pending_changes == 0 and not m.refresh_due(max_seconds=0.0)


def test_mapped_unit_vectors_take_upserts(tmp_path: Path) -> None:
    folder = tmp_path / "units"
    m = matcher(True, unit_vectors_dir=folder)
    m.index_programmes(CATALOGUE)
    m.index_demands(DEMANDS)
    old = m._index.units.vectors.path
    assert m._index.units.vectors.mapped
    m.upsert_programmes([WELDING_ROBOT, edit(CATALOGUE[3], 0, 5)])
    units = m._index.units.vectors
    assert isinstance(units, StackedVectors) and units.mapped and units.path == old
    assert units.extra.resident_nbytes > 0
    assert m.match_demand(ROBOT_DEMAND, k=1)[0].programme_id == "p-robot"
    assert [p.name for p in folder.iterdir()] == [old.name]  # not rewritten per upsert
    m.refresh_statistics()
    new = m._index.units.vectors
    assert not isinstance(new, StackedVectors) and new.mapped and new.path != old
    assert [p.name for p in folder.iterdir()] == [new.path.name]  # the old file removed
    programmes = {p.id: p for p in CATALOGUE}
    programmes.update({"p-robot": WELDING_ROBOT, "p003": edit(CATALOGUE[3], 0, 5)})
    want = fresh(True, programmes, {d.id: d for d in DEMANDS}, unit_vectors_dir=folder)
    assert want._index.units.vectors.path == new.path  # the same content, the same file
    assert_same_results(m, want, programmes)


def test_bm25_add_then_refresh_equals_an_index() -> None:
    docs = [make_programme(f"b{i}", i).description for i in range(30)]
    tokens = [tokenize(t) for t in docs]
    grown = BM25().index(tokens=tokens[:10])
    rows = grown.add(tokens[10:20])
    grown.add(tokens[20:])
    assert list(rows) == list(range(10, 20)) and grown.n_docs == 30
    q = tokenize("培养掌握数控编程的人员")
    assert grown.scores([q]).shape == (1, 30)
    np.testing.assert_array_equal(grown.scores([q])[0, [3, 25, 12]], grown.scores_rows(q, np.array([3, 25, 12])))
    keep = np.array([29, 3, 17, 8, 21, 0])
    grown.refresh(keep, lambda rows: [tokens[r] for r in rows])
    want = BM25().index(tokens=[tokens[i] for i in keep])
    assert grown.vocabulary_ == want.vocabulary_
    for a, b in ((grown.weights_, want.weights_),):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("dense", [False, True], ids=["lexical", "dense"])
def test_a_new_model_swapped_in_place_answers_as_a_matcher_built_with_it(dense: bool) -> None:
    from matching.ranking import load_ranker

    programmes = {p.id: p for p in CATALOGUE}
    shipped = load_ranker("dense" if dense else "lexical")
    other = load_ranker("dense" if dense else "lexical")
    other.coef_ = other.coef_[::-1].copy()  # a different model with the same features
    m = fresh(dense, programmes, {})
    before = m.match_demand(QUERIES[0], k=10)
    m.set_model(other)
    want = fresh(dense, programmes, {}, ranker=other)
    assert m.match_demand(QUERIES[0], k=10) == want.match_demand(QUERIES[0], k=10)
    assert m.match_demand(QUERIES[0], k=10) != before
    m.set_model(None)  # back to the shipped model
    assert np.array_equal(m.ranker.coef_, shipped.coef_) and m.match_demand(QUERIES[0], k=10) == before
    bad = load_ranker("dense" if dense else "lexical")
    bad.feature_names = ("something", "else")
    with pytest.raises(ValueError, match="different features"):
        m.set_model(bad)
    assert m.match_demand(QUERIES[0], k=10) == before  # a refused model changes nothing
