"""The Matcher end to end on hand-written Chinese cases, with both real encoders."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from matching import encoders as encoders_module
from matching.cache import CachedEncoder, MemoryVectorStore
from matching.calibration import ProbabilityCalibrator
from matching.encoders import SentenceTransformerEncoder, default_encoder
from matching.errors import InputError, MatchingError
from matching.pipeline import Matcher, MissingVectors, Priors
from matching.ranking import MODEL_DIR
from matching.types import Demand, Module, Programme
from matching.units import skill_phrase

# The encoder fixtures (e5_encoder, e5_store, e5_cached, e5_matcher, minilm_encoder) are
# registered from tests/matching_fixtures.py by conftest's pytest_plugins.
from .matching_fixtures import DEMANDS, EXPECTED_BEST, PROGRAMMES, STANDING

pytestmark = pytest.mark.slow

DEMAND = {d.id: d for d in DEMANDS}


# ---------------------------------------------------------------------------- encoders


def test_e5_vectors_are_normalised_and_meaningful(e5_cached: CachedEncoder) -> None:
    q = e5_cached.encode_queries(["为卧床老人翻身和擦浴"])
    d = e5_cached.encode_documents(["协助卧床老人翻身与转移", "电动机控制线路接线", "直播间搭建与灯光布置"])
    assert q.shape == (1, 384) and d.shape == (3, 384) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-3)
    sims = d @ q[0]
    assert sims.argmax() == 0 and sims[0] - sims[1:].max() > 0.05
    before = e5_cached.misses
    e5_cached.encode_documents(["协助卧床老人翻身与转移"])
    assert e5_cached.misses == before  # served from the session store


def test_minilm_encoder_runs_offline(minilm_encoder: SentenceTransformerEncoder) -> None:
    v = minilm_encoder.encode_documents(["forklift safety training", "kitchen hygiene", "叉车"])
    assert minilm_encoder.name == "st-model" and v.shape == (3, minilm_encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    q = minilm_encoder.encode_queries(["how to drive a forklift safely"])[0]
    assert (v @ q).argmax() == 0
    assert minilm_encoder.encode_queries([]).shape == (0, minilm_encoder.dim)


def test_missing_avx2_falls_back_to_lexical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders_module, "cpu_has_avx2", lambda: False)
    with pytest.warns(RuntimeWarning, match="AVX2.*lexical scorer"):
        assert default_encoder() is None
    with pytest.warns(RuntimeWarning, match="lexical scorer"):
        m = Matcher()
    assert m.encoder is None and not m.dense


def test_sentence_transformer_bad_model_is_clear(tmp_path) -> None:  # noqa: ANN001
    from matching.errors import EncoderUnavailable

    with pytest.raises(EncoderUnavailable, match="cannot load sentence-transformers model"):
        SentenceTransformerEncoder(str(tmp_path / "no-such-model"))


# ---------------------------------------------------------------------------- matching


@pytest.mark.parametrize("demand_id", sorted(EXPECTED_BEST))
def test_best_programme_is_the_obvious_one(e5_matcher: Matcher, demand_id: str) -> None:
    matches = e5_matcher.match_demand(DEMAND[demand_id], k=3)
    assert matches[0].programme_id == EXPECTED_BEST[demand_id]
    assert [m.rank for m in matches] == [1, 2, 3]
    assert matches[0].score >= matches[1].score >= matches[2].score


def test_suspended_institution_is_never_recommended(e5_matcher: Matcher) -> None:
    ids = [m.programme_id for d in DEMANDS for m in e5_matcher.match_demand(d, k=len(PROGRAMMES), explain=False)]
    assert "p-care-suspended" not in ids and "p-care" in ids
    assert e5_matcher.match_programme("p-care-suspended") == []
    # Without the standing, the same programme is a strong match for the nursing home.
    open_matcher = Matcher(encoder=e5_matcher.encoder, store=e5_matcher._vectors.cached.store)
    open_matcher.index_programmes(PROGRAMMES)
    top = [m.programme_id for m in open_matcher.match_demand(DEMAND["d-nursing-home"], k=2, explain=False)]
    assert "p-care-suspended" in top
    # A suspension decided later takes effect without re-indexing.
    open_matcher.set_standing({"inst-a": "suspended"})
    ids = [m.programme_id for m in open_matcher.match_demand(DEMAND["d-nursing-home"], k=8, explain=False)]
    assert "p-care" not in ids and "p-care-suspended" in ids


def test_explanation_links_requirements_to_evidence(e5_matcher: Matcher) -> None:
    best = e5_matcher.match_demand(DEMAND["d-ev-repair"], k=1)[0]
    ex = best.explanation
    assert ex is not None and ex.covered, "an EV repair course must cover EV repair duties"
    evidence = {c.evidence for c in ex.covered}
    p_ev = next(p for p in PROGRAMMES if p.id == "p-ev")
    own_texts = {m.name for m in p_ev.modules} | set(p_ev.certificates)
    own_texts |= {skill_phrase(t) for t in p_ev.skills + p_ev.outcomes}
    assert evidence <= own_texts
    assert all(c.similarity >= e5_matcher.coverage_threshold for c in ex.covered)
    assert all(c.similarity < e5_matcher.coverage_threshold for c in ex.gaps)
    assert {c.requirement_kind for c in ex.covered + ex.gaps} <= {"duty", "requirement", "skill"}
    assert len(ex.covered) + len(ex.gaps) == len(DEMAND["d-ev-repair"].requirement_items())
    assert ex.contributions and abs(ex.contributions[0].contribution) >= abs(ex.contributions[-1].contribution)
    # The chef programme covers fewer EV duties than the EV programme.
    chef = next(m for m in e5_matcher.match_demand(DEMAND["d-ev-repair"], k=10) if m.programme_id == "p-cook")
    assert chef.explanation.coverage < ex.coverage


def _offering_everything(dense: bool) -> ProbabilityCalibrator:
    # The shipped calibrator with a tau that every pair reaches: bundle mechanics on catalogues
    # of a handful of programmes, whose probabilities are low (tests/test_calibration.py).
    cal = ProbabilityCalibrator.load(MODEL_DIR / ("dense" if dense else "lexical"))
    cal.min_probability = 0.0
    return cal


def test_bundle_combines_programmes_when_none_covers_everything(e5_encoder: object, e5_store: object) -> None:
    demand = DEMAND["d-care-and-baby"]
    e5_matcher = Matcher(encoder=e5_encoder, store=e5_store, standing=STANDING,  # type: ignore[arg-type]
                         calibrator=_offering_everything(dense=True))
    e5_matcher.index_programmes(PROGRAMMES)
    bundles = e5_matcher.bundles(demand)
    assert bundles, "some programme covers some requirement"
    best = bundles[0]
    assert 1 <= len(best.programme_ids) <= 3
    assert set(best.covered) | set(best.missing) == {t for _, t in demand.requirement_items()}
    assert "p-care-suspended" not in best.programme_ids
    # Every member contributes something, and the covered list is the union of members.
    assert all(best.by_programme[p] for p in best.programme_ids)
    assert set(best.covered) == set().union(*best.by_programme.values())
    singles = [b for b in bundles if len(b.programme_ids) == 1]
    assert all(len(b.covered) <= len(best.covered) for b in singles)
    if len(best.programme_ids) > 1:
        assert {"p-care", "p-baby"} <= set(best.programme_ids) or len(best.covered) > max(
            (len(b.covered) for b in singles), default=0
        )


def test_bundle_limits(e5_matcher: Matcher) -> None:
    with pytest.raises(ValueError, match="max_size"):
        e5_matcher.bundles(DEMAND["d-chef"], max_size=4)
    one = e5_matcher.bundles(DEMAND["d-chef"], max_size=1)
    assert all(len(b.programme_ids) == 1 for b in one)


def test_bundle_leaves_out_an_off_topic_programme_that_covers_a_generic_duty() -> None:
    programmes = [
        Programme(id="p-accounting", title="会计实务与财务报表编制", description="培养能完成记账凭证、账簿和财务报表编制的会计人员。",
                  modules=(Module("会计凭证填制与审核"), Module("财务报表编制"), Module("纳税申报实务")),
                  skills=("编制会计凭证", "编制财务报表", "纳税申报")),
        Programme(id="p-car-service", title="汽车维修接待", description="培养汽车售后服务接待与维修业务人员。",
                  modules=(Module("与客户沟通技巧"), Module("汽车维修业务接待"), Module("汽车保养常识")),
                  skills=("与客户沟通", "维修工单填写")),
    ]
    matcher = Matcher(encoder=None, calibrator=_offering_everything(dense=False))
    matcher.index_programmes(programmes)
    demand = Demand(id="d-cashier", title="出纳会计", duties=("编制会计凭证和财务报表", "办理纳税申报", "与客户沟通"))
    unbounded = matcher.bundles(demand, margin=float("inf"))
    assert unbounded[0].programme_ids == ("p-accounting", "p-car-service"), "the generic duty is coverable"
    best = matcher.bundles(demand)[0]
    assert best.programme_ids == ("p-accounting",)
    assert best.missing == ("与客户沟通",)


def test_programme_to_demands(e5_matcher: Matcher) -> None:
    assert e5_matcher.match_programme("p-elec", k=1)[0].demand_id == "d-electrician"
    matches = e5_matcher.match_programme(PROGRAMMES[0], k=3)
    assert matches[0].demand_id == "d-nursing-home" and matches[0].explanation.covered
    with pytest.raises(InputError, match="'p-unknown' is not indexed"):
        e5_matcher.match_programme("p-unknown")


def test_priors_apply_only_with_stated_facts(e5_matcher: Matcher) -> None:
    far = Demand(id="d-far", title="养老院护理员", duties=("为卧床老人翻身、擦浴",), district="延庆区", mode="线上",
                 headcount=100, skill_level="一级")
    m = e5_matcher.match_demand(far, k=len(PROGRAMMES))
    care = next(x for x in m if x.programme_id == "p-care")
    assert set(care.explanation.notes) == {"district_mismatch", "mode_mismatch", "capacity_below_headcount",
                                          "level_mismatch"}
    plain = Demand(id="d-plain", title="养老院护理员", duties=("为卧床老人翻身、擦浴",))
    care_plain = next(x for x in e5_matcher.match_demand(plain, k=len(PROGRAMMES)) if x.programme_id == "p-care")
    assert care_plain.explanation.notes == ()
    p = Priors()
    expected = p.district_mismatch + p.mode_mismatch + p.capacity_short + p.level_mismatch
    assert care.score - care_plain.score == pytest.approx(expected, abs=1e-6)


def test_precomputed_vectors_without_encoding(e5_matcher: Matcher, e5_cached: CachedEncoder) -> None:
    # The platform's path: vectors stored under (namespace, text hash), worker never encodes.
    needed = e5_matcher.required_texts(PROGRAMMES, DEMANDS)
    store = MemoryVectorStore()
    for ns, texts in needed.items():
        role = ns.rsplit("/", 1)[1]
        fn = e5_cached.encode_queries if role == "query" else e5_cached.encode_documents
        store.put_many(ns, dict(zip(texts, fn(list(texts.values())))))

    class NoEncoding:
        name, dim = e5_cached.name, e5_cached.dim

        def encode_queries(self, texts):  # noqa: ANN001, ANN202
            raise AssertionError("must not encode")

        encode_documents = encode_queries

    worker = Matcher(encoder=NoEncoding(), store=store, encode_missing=False, standing=STANDING)
    worker.index_programmes(PROGRAMMES)
    got = [m.programme_id for m in worker.match_demand(DEMAND["d-chef"], k=3)]
    assert got == [m.programme_id for m in e5_matcher.match_demand(DEMAND["d-chef"], k=3)]
    new = Demand(id="d-new", title="焊工", duties=("焊接钢结构",))
    with pytest.raises(MissingVectors) as info:
        worker.match_demand(new)
    assert "焊接钢结构" in next(iter(info.value.missing.values())).values()


def _mapped_matcher(e5_matcher: Matcher, folder: Path, programmes: list[Programme] = PROGRAMMES) -> Matcher:
    m = Matcher(encoder=e5_matcher.encoder, store=e5_matcher._vectors.cached.store, standing=STANDING,
                unit_vectors_dir=folder)
    m.index_programmes(programmes)
    return m


def test_mapped_unit_vectors_give_the_same_matches(e5_matcher: Matcher, tmp_path: Path) -> None:
    mapped = _mapped_matcher(e5_matcher, tmp_path / "units")
    mapped.index_demands(DEMANDS)
    units = mapped._index.units.vectors
    assert units.mapped and units.resident_nbytes == 0 and units.path.parent == tmp_path / "units"
    assert not e5_matcher._index.units.vectors.mapped
    for d in DEMANDS:
        # Ids, scores, ranks and every explanation, exactly.
        assert mapped.match_demand(d, k=len(PROGRAMMES)) == e5_matcher.match_demand(d, k=len(PROGRAMMES))
        assert mapped.bundles(d) == e5_matcher.bundles(d)
    assert mapped.match_programme("p-care", k=3) == e5_matcher.match_programme("p-care", k=3)


def test_matchers_on_one_catalogue_share_one_unit_vector_file(e5_matcher: Matcher, tmp_path: Path) -> None:
    first = _mapped_matcher(e5_matcher, tmp_path)
    path = first._index.units.vectors.path
    inode = path.stat().st_ino
    second = _mapped_matcher(e5_matcher, tmp_path)
    assert second._index.units.vectors.path == path and path.stat().st_ino == inode  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    # Another catalogue (here: fewer programmes) has other unit texts, so another file.
    third = _mapped_matcher(e5_matcher, tmp_path, PROGRAMMES[:4])
    assert third._index.units.vectors.path != path


def test_new_catalogue_removes_the_old_unit_vector_file(e5_matcher: Matcher, tmp_path: Path) -> None:
    old = _mapped_matcher(e5_matcher, tmp_path, PROGRAMMES[:5])
    old_path = old._index.units.vectors.path
    before = old.match_demand(DEMAND["d-chef"], k=5)
    new = _mapped_matcher(e5_matcher, tmp_path)
    new_path = new._index.units.vectors.path
    assert [p.name for p in tmp_path.iterdir()] == [new_path.name] and not old_path.exists()
    # A matcher still on the old catalogue keeps reading its unlinked, still mapped file.
    old._dscores.clear()
    assert old.match_demand(DEMAND["d-chef"], k=5) == before


def test_lexical_matcher_writes_no_unit_vectors(tmp_path: Path) -> None:
    m = Matcher(encoder=None, unit_vectors_dir=tmp_path / "units")
    m.index_programmes(PROGRAMMES)
    assert m._index.units.vectors is None and not (tmp_path / "units").exists()


def test_lexical_matcher_without_encoder() -> None:
    m = Matcher(encoder=None, standing=STANDING)
    m.index_programmes(PROGRAMMES)
    m.index_demands(DEMANDS)
    hits = sum(m.match_demand(DEMAND[d], k=1)[0].programme_id == p for d, p in EXPECTED_BEST.items())
    assert hits >= 4
    ex = m.match_demand(DEMAND["d-electrician"], k=1)[0].explanation
    assert ex.covered and all(0 <= c.similarity <= 1 for c in ex.covered)
    assert m.match_programme("p-cook", k=1)[0].demand_id == "d-chef"


def test_matching_before_indexing_is_an_error() -> None:
    m = Matcher(encoder=None)
    with pytest.raises(MatchingError, match="index_programmes first"):
        m.match_demand(DEMANDS[0])
    m.index_programmes(PROGRAMMES)
    with pytest.raises(MatchingError, match="index_demands first"):
        m.match_programme("p-care")
    with pytest.raises(ValueError, match="k must be"):
        m.match_demand(DEMANDS[0], k=0)


def test_minilm_matcher_end_to_end(minilm_encoder: SentenceTransformerEncoder) -> None:
    # English-only model: matching works mechanically; quality on Chinese is not expected.
    m = Matcher(encoder=minilm_encoder, store=MemoryVectorStore(), ranker=None)
    m.index_programmes(PROGRAMMES)
    matches = m.match_demand(DEMAND["d-electrician"], k=3)
    assert len(matches) == 3 and matches[0].explanation is not None
    assert all(np.isfinite(x.score) for x in matches)


def test_no_warnings_from_matching(e5_matcher: Matcher) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e5_matcher.match_demand(DEMANDS[0], k=2)
        e5_matcher.bundles(DEMANDS[0])


def test_matching_does_not_import_web_stack() -> None:
    import subprocess
    import sys

    code = "import sys, matching.pipeline, matching.evaluate; print(any(m.split('.')[0] in ('flask', 'sqlalchemy') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_programme_is_frozen() -> None:
    p = Programme(id="p", title="电工")
    with pytest.raises(AttributeError):
        p.title = "焊工"  # type: ignore[misc]
