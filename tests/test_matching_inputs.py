"""Bad input gives clear errors that name the record, line or field; loaders map both formats."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from matching.errors import InputError
from matching.loaders import load_demands, load_programmes, load_qrels, split_duties, split_items
from matching.pipeline import Matcher
from matching.types import MAX_FIELD_CHARS, Demand, Module, Programme

from .matching_fixtures import DEMANDS, PROGRAMMES, write_lines


def test_programme_normalises_modules_and_lists() -> None:
    p = Programme(id=" p1 ", title=" 电工 ", modules=["电工基础", {"name": "接线", "hours": 8}, Module("检修", 4)],
                  skills=["接线", " "])
    assert p.id == "p1" and p.title == "电工"
    assert p.modules == (Module("电工基础"), Module("接线", 8), Module("检修", 4))
    assert p.skills == ("接线",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": ""}, "'title' is empty"),
        ({"title": "   "}, "'title' is empty"),
        ({"title": "电" * (MAX_FIELD_CHARS + 1)}, "'title' has 20001 characters"),
        ({"skills": "接线"}, "'skills' must be a list"),
        ({"skills": ["接线", 3]}, "'skills'[1] must be a string"),
        ({"skills": ["电" * 1001]}, "'skills'[0] has 1001 characters"),
        ({"capacity": -1}, "'capacity' must not be negative"),
        ({"fee": "100"}, "'fee' must be a number"),
        ({"modules": [3]}, "'modules'[0] must be a module"),
    ],
)
def test_programme_rejects_bad_fields(kwargs: dict, message: str) -> None:
    fields = {"id": "p-bad", "title": "电工", **kwargs}
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(")) as info:
        Programme(**fields)
    assert "'p-bad'" in str(info.value)


def test_demand_rejects_missing_id_and_bad_headcount() -> None:
    with pytest.raises(InputError, match="Demand id must be a non-empty string"):
        Demand(id="", title="电工")
    with pytest.raises(InputError, match="'headcount' must be a number"):
        Demand(id="d", title="电工", headcount="三")  # type: ignore[arg-type]


def test_matcher_rejects_duplicates_empty_and_non_chinese() -> None:
    m = Matcher(encoder=None)
    with pytest.raises(InputError, match="duplicate Programme id 'p-care'"):
        m.index_programmes([PROGRAMMES[0], PROGRAMMES[0]])
    with pytest.raises(InputError, match="no programmes"):
        m.index_programmes([])
    english = Programme(id="p-en", title="Forklift driving", description="Operate forklifts safely.")
    with pytest.raises(InputError, match="'p-en' has no Chinese text"):
        m.index_programmes([PROGRAMMES[0], english])
    with pytest.raises(InputError, match="item 0 is a Demand"):
        m.index_programmes([DEMANDS[0]])  # type: ignore[list-item]
    m.index_programmes(PROGRAMMES)
    with pytest.raises(InputError, match="'d-en' has no Chinese text"):
        m.match_demand(Demand(id="d-en", title="Chef", duties=("cook dinner",)))
    tolerant = Matcher(encoder=None, require_chinese=False)
    tolerant.index_programmes([PROGRAMMES[0], english])


def test_split_items_and_duties() -> None:
    assert split_items("专业基础课程：电工基础、安全用电。专业核心课程：照明线路，配电柜维护；实训：接线") == [
        "电工基础", "安全用电", "照明线路", "配电柜维护", "接线"]
    assert split_duties("岗位职责：巡检配电室；检修线路；排除故障。") == ("", ["巡检配电室", "检修线路", "排除故障"])
    assert split_duties("负责厨房工作") == ("负责厨房工作", [])


def test_loaders_map_benchmark_format(tmp_path: Path) -> None:
    prog = {"id": "x1", "title": "烹饪工艺", "level": "中职", "description": "培养厨师。", "skills": ["刀工"],
            "courses": "专业基础课程：烹饪原料知识。专业核心课程：热菜制作、冷菜制作。", "certificates": "职业技能等级证书：中式烹调师"}
    dem = {"id": "4-03-02-01", "title": "中式烹调师", "description": "岗位职责：加工原料；烹制热菜。",
           "summary": "从事中式菜肴制作的人员。"}
    programmes = load_programmes(write_lines(tmp_path / "p.jsonl", [json.dumps(prog, ensure_ascii=False)]))
    demands = load_demands(write_lines(tmp_path / "d.jsonl", [json.dumps(dem, ensure_ascii=False)]))
    # Core courses first: they define the programme and are the ones encoded densely.
    assert [m.name for m in programmes[0].modules] == ["热菜制作", "冷菜制作", "烹饪原料知识"]
    assert programmes[0].certificates == ("中式烹调师",)
    assert demands[0].duties == ("加工原料", "烹制热菜")
    assert demands[0].description == "从事中式菜肴制作的人员。"


def test_loaders_accept_platform_format(tmp_path: Path) -> None:
    prog = {"id": "p", "title": "电工", "modules": [{"name": "接线", "hours": 8}], "certificate_kind": "特种作业操作证",
            "certificate_name": "低压电工", "institution_id": 7}
    programmes = load_programmes(write_lines(tmp_path / "p.jsonl", [json.dumps(prog, ensure_ascii=False)]))
    assert programmes[0].certificates == ("特种作业操作证：低压电工",)
    assert programmes[0].institution_id == "7"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "title": "电工"}', '{"id": "b", "title": '], r"line 2: invalid JSON"),
        (['{"id": "a", "title": "电工"}', '["a"]'], r"line 2: expected a JSON object"),
        (['{"id": "a", "title": "电工"}', '{"id": "a", "title": "焊工"}'], r"line 2: duplicate id 'a' \(first on line 1\)"),
        (['{"id": "a", "title": ""}'], r"line 1: Programme 'a' field 'title' is empty"),
        (['{"id": "a", "title": "电工", "skills": "接线"}'], r"line 1: .*'skills' must be a list"),
        ([""], r"no records"),
    ],
)
def test_load_programmes_errors_name_the_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write_lines(tmp_path / "programmes.jsonl", lines)
    with pytest.raises(InputError, match=message):
        load_programmes(path)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        load_demands(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["q1 0 d1 2", "q1 0 d2"], r"line 2: expected 4 fields"),
        (["q1 0 d1 high"], r"line 1: grade 'high' is not an integer"),
        (["q1 0 d1 -1"], r"line 1: grade -1 is negative"),
        (["q1 0 d1 2", "q1 0 d1 1"], r"line 2: q1 d1 judged 2 and 1"),
        ([""], r"no judgements"),
    ],
)
def test_load_qrels_errors_name_the_line(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_qrels(write_lines(tmp_path / "qrels.txt", lines))


def test_load_qrels_reads_grades(tmp_path: Path) -> None:
    q = load_qrels(write_lines(tmp_path / "qrels.txt", ["q1 0 d1 2", "q1 0 d2 1", "", "q2 0 d1 0"]))
    assert q == {"q1": {"d1": 2, "d2": 1}, "q2": {"d1": 0}}
