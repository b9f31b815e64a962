"""Chinese word-segmented search over postings."""
from __future__ import annotations

from chanjiao import search
from chanjiao.extensions import db


def test_segmented_search_needs_every_word_and_ranks_title_hits_first(app, make):
    org = make.org("institution")
    battery = make.programme(org, title="新能源汽车动力电池检修", description="高压安全")
    electric = make.programme(
        org, title="低压电工作业培训", description="电工基础，也涉及新能源汽车充电桩",
        modules=[], outcomes=[],
    )
    cook = make.programme(org, title="中式烹调师（四级）", description="热菜制作", modules=[], outcomes=[])
    for p in (battery, electric, cook):
        search.index_programme(p)
    db.session.commit()

    assert search.ranked_ids("programme", "电工") == [electric.id]
    assert search.ranked_ids("programme", "新能源汽车") == [battery.id, electric.id]
    assert search.ranked_ids("programme", "新能源汽车 电池") == [battery.id]
    assert search.ranked_ids("programme", "烹调 电池") == []
    assert search.ranked_ids("programme", "  ，。 ") is None
    assert search.ranked_ids("demand", "电工") == []


def test_reindex_replaces_stale_terms(app, make):
    org = make.org("institution")
    programme = make.programme(org, title="育婴员培训", modules=[], outcomes=[], description="")
    search.index_programme(programme)
    programme.title = "养老护理员培训"
    search.index_programme(programme)
    db.session.commit()
    assert search.ranked_ids("programme", "育婴") == []
    assert search.ranked_ids("programme", "养老护理") == [programme.id]
    assert search.reindex_all() == 1


def test_words_split_differently_by_segmentation_are_still_found(app, make):
    """jieba indexes 桥式起重机司机 as 桥式/起重/机/司机; 起重机 must still find it (bigrams)."""
    org = make.org("enterprise")
    crane = make.demand(org, title="桥式起重机司机", description="", duties=[], requirements=[])
    plumber = make.demand(org, title="物业水电工", description="", duties=[], requirements=[])
    other = make.demand(org, title="中式烹调师", description="", duties=[], requirements=[])
    for d in (crane, plumber, other):
        search.index_demand(d)
    db.session.commit()
    assert search.ranked_ids("demand", "起重机") == [crane.id]
    assert search.ranked_ids("demand", "起重机 司机") == [crane.id]
    assert search.ranked_ids("demand", "电工") == [plumber.id]
    # Every bigram must be present: 机烹 occurs nowhere.
    assert search.ranked_ids("demand", "机烹") == []


def test_whole_word_hits_outrank_bigram_hits(app, make):
    org = make.org("institution")
    whole = make.programme(org, title="起重机操作培训", description="", modules=[], outcomes=[])
    pieces = make.programme(org, title="桥式起重机司机培训", description="", modules=[], outcomes=[])
    for p in (whole, pieces):
        search.index_programme(p)
    db.session.commit()
    assert search.ranked_ids("programme", "起重机") == [whole.id, pieces.id]
