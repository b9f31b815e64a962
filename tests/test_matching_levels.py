"""Levels, the level a role implies, and the flag that lowers programmes below it."""
from __future__ import annotations

import pytest

from matching import Matcher
from matching.features import FEATURES
from matching.levels import level_rank, role_min_level, skills_track_rank
from matching.types import Demand, Module, Programme


@pytest.mark.parametrize(
    ("text", "rank"),
    [("五级/初级工", 0), ("中职", 0), ("四级/中级工", 1), ("高职专科", 1), ("职教本科", 2), ("三级/高级工", 2),
     ("二级/技师", 3), ("高级技师", 4), ("一级", 4), ("不定级", None), ("", None), (None, None)],
)
def test_level_rank(text: str | None, rank: int | None) -> None:
    assert level_rank(text) == rank


def test_professional_titles_are_off_the_skills_track() -> None:
    assert skills_track_rank("初级职称") is None
    assert skills_track_rank("五级/初级工") == 0


@pytest.mark.parametrize(
    ("demand", "expected"),
    [
        (Demand(id="a", title="机械设计工程师", duties=("绘制零件图",)), 1),
        (Demand(id="b", title="质量检测岗", occupation="化工工程技术人员", duties=("制定检测方案",)), 1),
        (Demand(id="c", title="数据标注岗", description="从事数据采集与分析的专业人员。", duties=("标注数据",)), 1),
        (Demand(id="d", title="中式烹调师", duties=("烹制热菜",)), None),
        (Demand(id="e", title="物业维修电工", description="负责小区配电维护。", duties=("巡检配电柜",)), None),
    ],
)
def test_role_min_level(demand: Demand, expected: int | None) -> None:
    assert role_min_level(demand) == expected


def _programme(pid: str, level: str) -> Programme:
    return Programme(
        id=pid,
        title="机电设备安装与调试",
        description="培养从事机电设备安装、调试与维修的人才。",
        modules=(Module("电气控制技术"), Module("机械装配与调试")),
        skills=("机电设备安装与调试",),
        level=level,
    )


def test_flag_lowers_programmes_below_a_professional_role() -> None:
    programmes = [_programme("secondary", "中职"), _programme("higher", "高职专科"), _programme("title", "初级职称")]
    matcher = Matcher(encoder=None)
    matcher.index_programmes(programmes)
    column = FEATURES.index("level_below_role")
    duties = ("机电设备安装与调试", "电气控制系统维修")

    engineer = Demand(id="eng", title="机电设备工程师", duties=duties)
    x = matcher.pair_features(engineer, ["secondary", "higher", "title"])[:, column]
    assert x.tolist() == [1.0, 0.0, 0.0]
    matches = {m.programme_id: m for m in matcher.match_demand(engineer, k=3)}
    assert matches["higher"].score > matches["secondary"].score
    assert "level_below_role" in matches["secondary"].explanation.notes
    assert "level_below_role" not in matches["higher"].explanation.notes
    assert "level_below_role" not in {c.feature for c in matches["higher"].explanation.contributions}

    fitter = Demand(id="fit", title="机电设备安装工", duties=duties)
    assert not matcher.pair_features(fitter, ["secondary", "higher"])[:, column].any()
    scores = {m.programme_id: m.score for m in matcher.match_demand(fitter, k=3)}
    # The texts are the same; apart from tie order only the flag tells the programmes apart.
    engineer_gap = matches["higher"].score - matches["secondary"].score
    assert engineer_gap > abs(scores["higher"] - scores["secondary"]) + 1.0
