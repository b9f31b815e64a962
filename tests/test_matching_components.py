"""Lexical scorer, vector cache, ranker conformance and metrics (no model needed)."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from matching.cache import (
    CachedEncoder,
    DirectoryVectorStore,
    MemoryVectorStore,
    default_cache_dir,
    namespace,
    text_key,
)
from matching.evaluate import (
    calibrate_threshold,
    dcg,
    evaluate_run,
    group_of,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)
from matching.lexical import BM25, char_bigrams, tokenize
from matching.ranking import PairwiseLinearRanker, load_ranker

from .matching_fixtures import unit_rows

# ---------------------------------------------------------------------------- lexical


def test_bigrams_and_tokens() -> None:
    assert char_bigrams("电工a养老护理") == ["电工", "养老", "老护", "护理"]
    assert char_bigrams("焊") == ["焊"]
    toks = tokenize("新能源汽车维修 Python3")
    assert "b:能源" in toks and "w:新能源" in toks and "w:python3" in toks
    assert "w:的" not in tokenize("汽车的维修")


def test_bm25_ranks_the_matching_document_first(tmp_path: Path) -> None:
    docs = ["养老护理员培训 老年人生活照料", "新能源汽车动力电池维修", "直播电商运营与主播培训", "低压电工作业 配电柜维护"]
    bm = BM25().index(docs)
    top, scores = bm.retrieve("电动汽车电池检修", k=2)
    assert top[0] == 1 and scores[0] > scores[1]
    assert bm.retrieve("直播带货主播", k=1)[0][0] == 2
    bm.save(tmp_path / "bm25")
    again = BM25.load(tmp_path / "bm25")
    np.testing.assert_allclose(again.scores([tokenize("配电")]), bm.scores([tokenize("配电")]))


def test_bm25_weights_follow_the_formula() -> None:
    docs = [["b:电工", "w:电工", "b:电工"], [], ["b:焊工", "b:电工"]]
    bm = BM25(k1=1.2, b=0.75).index(tokens=docs)
    assert bm.vocabulary_ == {"b:电工": 0, "w:电工": 1, "b:焊工": 2}
    lengths, avg = [3, 0, 2], 5 / 3
    expected = np.zeros((3, 3), dtype=np.float32)
    for i, doc in enumerate(docs):
        for tok in set(doc):
            tf, df = doc.count(tok), sum(tok in d for d in docs)
            idf = math.log1p((3 - df + 0.5) / (df + 0.5))
            expected[i, bm.vocabulary_[tok]] = idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * lengths[i] / avg))
    np.testing.assert_allclose(bm.weights_.toarray(), expected, rtol=1e-6)


def test_bm25_one_query_scores_as_in_a_batch() -> None:
    docs = [" ".join(f"养老护理{i % 7}级 电工{i % 3} 焊接" for _ in range(i % 5 + 1)) for i in range(300)]
    bm = BM25().index(docs)
    one, other = tokenize("养老护理 电工 焊接"), tokenize("电工")
    single = bm.scores([one])
    assert single.shape == (1, 300) and single.dtype == np.float32 and single.max() > 0
    np.testing.assert_array_equal(single[0], bm.scores([one, other])[0])  # the same sums, bit for bit


def test_tokens_are_shared_strings() -> None:
    # One object per distinct token, however often it occurs in a catalogue.
    first, second = tokenize("养老护理员"), tokenize("养老护理员")
    assert first == second and all(a is b for a, b in zip(first, second))


def test_bm25_unknown_query_scores_zero() -> None:
    bm = BM25().index(["电工", "焊工"])
    assert bm.scores([tokenize("Forklift")]).max() == 0.0


# ---------------------------------------------------------------------------- cache


class CountingEncoder:
    """A deterministic fake encoder that counts what it encodes."""

    name = "counting-8"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def _vec(self, texts: Sequence[str], salt: int) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [unit_rows(1, self.dim, seed=int(text_key(t)[:8], 16) + salt)[0] for t in texts]
        return np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vec(texts, 1)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._vec(texts, 2)


def test_cached_encoder_encodes_each_text_once(tmp_path: Path) -> None:
    inner = CountingEncoder()
    enc = CachedEncoder(inner, DirectoryVectorStore(tmp_path))
    first = enc.encode_documents(["电工", "焊工", "电工"])
    assert inner.calls == [["电工", "焊工"]] and enc.misses == 2 and enc.hits == 1
    # A fresh store object on the same directory (another process) sees the packs on disk.
    enc2 = CachedEncoder(inner, DirectoryVectorStore(tmp_path))
    again = enc2.encode_documents(["焊工", "电工"])
    assert len(inner.calls) == 1 and enc2.hits == 2
    np.testing.assert_allclose(again, first[[1, 0]], atol=2e-3)  # float16 on disk
    np.testing.assert_allclose(np.linalg.norm(again, axis=1), 1.0, atol=1e-5)
    # Queries live in their own namespace: same text, different role, encoded anew.
    enc2.encode_queries(["电工"])
    assert inner.calls[-1] == ["电工"]
    packs = list(tmp_path.rglob("*.npz"))
    assert packs and all(p.parent.name.startswith("counting-8") for p in packs)
    with np.load(packs[0], allow_pickle=False) as z:
        assert z["vectors"].dtype == np.float16


def test_l2_normalise_in_row_blocks_equals_one_pass() -> None:
    from matching import encoders

    x = np.random.default_rng(8).standard_normal((encoders._NORM_BLOCK + 7, 16)).astype(np.float16)
    x[3] = 0
    whole = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(whole, axis=-1, keepdims=True)
    expected = np.divide(whole, norms, out=np.zeros_like(whole), where=norms > 0)
    got = encoders.l2_normalise(x)
    assert got.dtype == np.float32 and not got[3].any()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(encoders.l2_normalise(x[5]), expected[5])


def test_cached_encoder_stacks_rows_of_mixed_precision() -> None:
    class Float32Store(MemoryVectorStore):
        """Hands back float32 rows, as the platform's database store does."""

        def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
            return {k: v.astype(np.float32) for k, v in super().get_many(ns, keys).items()}

    inner = CountingEncoder()
    enc = CachedEncoder(inner, Float32Store())
    first = enc.encode_documents(["电工"])  # fresh: float16 rows
    both = enc.encode_documents(["电工", "焊工"])  # one stored float32 row, one fresh float16 row
    assert both.dtype == np.float32 and inner.calls == [["电工"], ["焊工"]]
    np.testing.assert_array_equal(both[0], first[0])
    fresh = inner.encode_documents(["焊工"]).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(both[1], fresh[0] / np.linalg.norm(fresh[0]))


def test_memory_store_and_namespaces() -> None:
    store = MemoryVectorStore()
    store.put_many(namespace("m", "query"), {text_key("电工"): np.ones(4)})
    assert set(store.get_many("m/query", [text_key("电工"), text_key("焊工")])) == {text_key("电工")}
    assert len(store) == 1
    with pytest.raises(ValueError, match="role"):
        namespace("m", "passage")


def test_default_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHANJIAO_VECTOR_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("CHANJIAO_VECTOR_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "chanjiao", "vectors")


def test_unreadable_pack_is_named(tmp_path: Path) -> None:
    store = DirectoryVectorStore(tmp_path)
    store.put_many("m/query", {text_key("电工"): np.ones(4)})
    bad = tmp_path / "m_query" / "broken.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(OSError, match="broken.npz"):
        DirectoryVectorStore(tmp_path).get_many("m/query", [text_key("焊工")])


# ---------------------------------------------------------------------------- ranker


# The array-API check needs SCIPY_ARRAY_API and an array-API estimator; ours is numpy-only.
_CHECKS = parametrize_with_checks([PairwiseLinearRanker()])
_APPLICABLE = [(est, chk) for est, chk in _CHECKS.args[1] if "array_api" not in chk.func.__name__]


@pytest.mark.parametrize(_CHECKS.args[0], _APPLICABLE, **_CHECKS.kwargs)
def test_sklearn_estimator_checks(estimator: PairwiseLinearRanker, check) -> None:  # noqa: ANN001
    check(estimator)


def test_ranker_learns_order_within_groups_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    # Grade depends on feature 0 only, plus a per-group offset on feature 2 that must not matter.
    groups = np.repeat(np.arange(40), 10)
    X[:, 2] += groups
    y = (X[:, 0] > 0.3).astype(float) + (X[:, 0] > 1.2)
    model = PairwiseLinearRanker(feature_names=["a", "b", "c"]).fit(X, y, groups=groups)
    assert abs(model.coef_[0]) > 5 * max(abs(model.coef_[1]), abs(model.coef_[2]))
    s = model.predict(X)
    assert np.corrcoef(s, X[:, 0])[0, 1] > 0.95
    np.testing.assert_allclose(model.contributions(X).sum(axis=1), s)
    model.save(tmp_path / "m", meta={"note": "test"})
    doc = json.loads((tmp_path / "m" / "ranker.json").read_text())
    assert doc["params"]["feature_names"] == ["a", "b", "c"]
    loaded = PairwiseLinearRanker.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(X), s)
    assert loaded.meta_ == {"note": "test"}


def test_ranker_needs_two_grades() -> None:
    with pytest.raises(ValueError, match="two different grades"):
        PairwiseLinearRanker().fit(np.ones((4, 2)), np.zeros(4))


def test_from_weights_rejects_unknown_features() -> None:
    r = PairwiseLinearRanker.from_weights(["a", "b"], {"b": 2.0})
    np.testing.assert_allclose(r.predict(np.array([[1.0, 3.0]])), [6.0])
    with pytest.raises(ValueError, match="unknown features"):
        PairwiseLinearRanker.from_weights(["a"], {"z": 1.0})


def test_shipped_rankers_load() -> None:
    from matching.features import FEATURES

    for kind in ("dense", "lexical"):
        r = load_ranker(kind)
        assert tuple(r.feature_names) == FEATURES
        assert np.isfinite(r.coef_).all() and np.abs(r.coef_).sum() > 0
    with pytest.raises(ValueError, match="kind"):
        load_ranker("bm25")


# ---------------------------------------------------------------------------- metrics


def test_metrics_on_hand_computed_cases() -> None:
    judged = {"a": 2, "b": 1, "c": 2}
    assert dcg([2, 1]) == pytest.approx(3 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "c", "b"], judged) == pytest.approx(1.0)
    ideal = 3 + 3 / math.log2(3) + 1 / 2
    assert ndcg_at_k(["x", "b", "a"], judged) == pytest.approx((1 / math.log2(3) + 3 / 2) / ideal)
    assert recall_at_k(["b", "a"], judged, k=50) == 0.5
    assert mrr_at_k(["x", "b", "c"], judged) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"] * 10 + ["a"], judged) == 0.0
    run = {"q1": ["a", "c"], "q2": ["z"], "unjudged": ["a"]}
    out = evaluate_run(run, {"q1": judged, "q2": {"y": 2}})
    assert out["queries"] == 2 and out["mrr@10"] == 0.5


def test_group_and_threshold() -> None:
    assert group_of("4-10-01-02") == "4-10-01"
    t = calibrate_threshold(np.array([0.8, 0.85, 0.9]), np.array([0.5, 0.6, 0.7]))
    assert 0.7 <= t <= 0.8


# ---------------------------------------------------------------------------- int8 vectors


def test_int8_vectors_keep_cosines() -> None:
    from matching.vectors import Int8Vectors

    x = unit_rows(50, 384, seed=3)
    v = Int8Vectors(x)
    assert v.shape == (50, 384) and v.nbytes == 50 * 384 + 50 * 4 and len(v) == 50
    q = unit_rows(1, 384, seed=4)[0]
    np.testing.assert_allclose(v.dot(q), x @ q, atol=3e-3)
    big = Int8Vectors(unit_rows(1300, 384, seed=5))  # several blocks, the last one partial
    np.testing.assert_allclose(big.dot(q), big[:] @ q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v[[3, 7]], x[[3, 7]], atol=3e-3)
    np.testing.assert_allclose(v[5], x[5], atol=3e-3)
    assert Int8Vectors(np.zeros((2, 4))).dot(np.ones(4)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="2-d"):
        Int8Vectors(np.ones(3))


def test_int8_vectors_built_in_blocks_match_one_pass() -> None:
    from matching import vectors

    x = unit_rows(vectors._BLOCK + 5, 8, seed=5).astype(np.float16)
    v = vectors.Int8Vectors(x)
    # The quantisation as it was written before it went block by block.
    whole = np.asarray(x, dtype=np.float32)
    scale = (np.abs(whole).max(axis=1) / 127.0).astype(np.float32)
    np.testing.assert_array_equal(v.scale, scale)
    np.testing.assert_array_equal(v.codes, np.rint(whole / scale[:, None]).astype(np.int8))
    rows = np.random.default_rng(6).permutation(len(x))[: vectors._BLOCK + 2]
    picked = vectors.Int8Vectors(x, rows=rows)
    np.testing.assert_array_equal(picked.codes, v.codes[rows])
    np.testing.assert_array_equal(picked.scale, v.scale[rows])
    assert vectors.Int8Vectors(x, rows=np.zeros(0, dtype=np.int64)).shape == (0, 8)


@pytest.mark.parametrize("idx", [7, [3, 0, 3, 42], slice(5, 60, 3), np.array([59, 1]), np.arange(60) % 2 == 0])
def test_int8_vectors_file_round_trip(tmp_path: Path, idx: object) -> None:
    from matching.vectors import Int8Vectors

    memory = Int8Vectors(unit_rows(60, 384, seed=6))
    assert memory.resident_nbytes == memory.nbytes and not memory.mapped and memory.path is None
    memory.save(tmp_path / "v.npy")
    mapped = Int8Vectors.open(tmp_path / "v.npy")
    assert isinstance(mapped.codes, np.memmap) and mapped.mapped and mapped.path == tmp_path / "v.npy"
    assert mapped.shape == memory.shape and len(mapped) == 60
    assert mapped.nbytes == memory.nbytes == 60 * 388 and mapped.resident_nbytes == 0
    decoded = mapped[idx]
    assert type(decoded) is np.ndarray and decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, memory[idx])
    q = unit_rows(1, 384, seed=7)[0]
    np.testing.assert_array_equal(mapped.dot(q), memory.dot(q))
    loaded = Int8Vectors.open(tmp_path / "v.npy", mmap=False)
    assert not loaded.mapped and loaded.resident_nbytes == loaded.nbytes
    np.testing.assert_array_equal(loaded[idx], memory[idx])
    # Plain numpy reads the file without pickles.
    records = np.load(tmp_path / "v.npy", allow_pickle=False)
    np.testing.assert_array_equal(records["codes"], memory.codes)


def test_int8_vectors_open_rejects_other_files(tmp_path: Path) -> None:
    from matching.vectors import Int8Vectors

    np.save(tmp_path / "floats.npy", np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="does not hold Int8Vectors"):
        Int8Vectors.open(tmp_path / "floats.npy")
    Int8Vectors(np.zeros((0, 4))).save(tmp_path / "empty.npy")
    assert Int8Vectors.open(tmp_path / "empty.npy").shape == (0, 4)


def test_open_shared_writes_once_reuses_and_removes_older_files(tmp_path: Path) -> None:
    import os
    import time

    from matching.vectors import Int8Vectors, open_shared

    built: list[str] = []

    def build(seed: int) -> Int8Vectors:
        built.append(f"seed {seed}")
        return Int8Vectors(unit_rows(20, 16, seed=seed))

    folder = tmp_path / "units"
    first = open_shared(folder, "aaa", lambda: build(1))
    assert first.mapped and first.path == folder / "units-aaa.npy" and built == ["seed 1"]
    inode = first.path.stat().st_ino
    again = open_shared(folder, "aaa", lambda: build(99))
    assert built == ["seed 1"] and again.path.stat().st_ino == inode
    np.testing.assert_array_equal(again[:], first[:])

    # A writer that died long ago left a temporary file; one writing now has a fresh one.
    (folder / ".units-dead.tmp").write_bytes(b"x")
    os.utime(folder / ".units-dead.tmp", (time.time() - 7200, time.time() - 7200))
    (folder / ".units-busy.tmp").write_bytes(b"x")
    (folder / "notes.txt").write_text("not ours")
    before = first[:]
    second = open_shared(folder, "bbb", lambda: build(2))
    assert built == ["seed 1", "seed 2"] and second.mapped
    assert sorted(p.name for p in folder.iterdir()) == [".units-busy.tmp", "notes.txt", "units-bbb.npy"]
    # The earlier catalogue's file is gone from the directory, not from its mapping.
    np.testing.assert_array_equal(first[:], before)
    np.testing.assert_array_equal(second[:], Int8Vectors(unit_rows(20, 16, seed=2))[:])


def test_open_shared_replaces_a_truncated_file(tmp_path: Path) -> None:
    from matching.vectors import Int8Vectors, open_shared

    good = Int8Vectors(unit_rows(30, 16, seed=3))
    tmp_path.joinpath("units-ccc.npy").write_bytes(b"\x93NUMPY")
    opened = open_shared(tmp_path, "ccc", lambda: good)
    assert opened.mapped
    np.testing.assert_array_equal(opened[:], good[:])


def test_open_shared_keeps_vectors_in_memory_when_it_cannot_write(tmp_path: Path) -> None:
    from matching.vectors import Int8Vectors, open_shared

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    good = Int8Vectors(unit_rows(5, 16, seed=4))
    with pytest.warns(RuntimeWarning, match="stay in this process's memory"):
        kept = open_shared(not_a_folder, "ddd", lambda: good)
    assert kept is good and not kept.mapped


# ---------------------------------------------------------------------------- evaluate command


def _write_dataset(folder: Path) -> Path:
    import dataclasses

    from .matching_fixtures import DEMANDS, EXPECTED_BEST, PROGRAMMES

    def plain(obj: object) -> dict:
        return {k: v for k, v in dataclasses.asdict(obj).items() if v not in (None, (), "")}

    (folder / "programmes.jsonl").write_text(
        "\n".join(json.dumps(plain(p), ensure_ascii=False) for p in PROGRAMMES) + "\n", encoding="utf-8")
    (folder / "demands.jsonl").write_text(
        "\n".join(json.dumps(plain(d), ensure_ascii=False) for d in DEMANDS) + "\n", encoding="utf-8")
    lines = [f"{d} 0 {p} 2" for d, p in EXPECTED_BEST.items()] + ["d-care-and-baby 0 p-baby 2",
                                                                 "d-care-and-baby 0 p-care 1"]
    (folder / "qrels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("extra", [[], ["--cv", "2"], ["--limit", "3"]])
def test_evaluate_prints_one_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    from matching.evaluate import main

    folder = _write_dataset(tmp_path)
    result = main([str(folder), "--encoder", "lexical", *extra])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    parsed = json.loads(last)
    assert set(parsed) == {"ndcg@10", "recall@50", "mrr@10", "queries", "encode_seconds", "rank_ms_p50",
                           "rank_ms_p95"}
    assert parsed == result
    assert parsed["queries"] == (3 if extra == ["--limit", "3"] else 6)
    assert 0.0 <= parsed["ndcg@10"] <= 1.0 and parsed["recall@50"] > 0.5


def test_evaluate_reports_malformed_files(tmp_path: Path) -> None:
    from matching.errors import InputError
    from matching.evaluate import main

    folder = _write_dataset(tmp_path)
    with open(folder / "qrels.txt", "a", encoding="utf-8") as fh:
        fh.write("d-chef p-cook 2\n")
    with pytest.raises(InputError, match=r"qrels.txt line 8: expected 4 fields"):
        main([str(folder), "--encoder", "lexical"])


ABSTENTION_KEYS = {"tau", "ece", "ece_programme", "brier", "abstain_auroc", "abstain_kept", "abstain_caught"}


@pytest.mark.parametrize("extra", [[], ["--cv", "3"]])
def test_evaluate_abstention_adds_calibration_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    from matching.calibration import ProbabilityCalibrator
    from matching.evaluate import main
    from matching.ranking import MODEL_DIR

    folder = _write_dataset(tmp_path)
    result = main([str(folder), "--encoder", "lexical", "--abstention", *extra])
    parsed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert parsed == result
    assert set(parsed) >= ABSTENTION_KEYS
    # tau is the shipped model's, never tuned by the evaluator.
    assert parsed["tau"] == ProbabilityCalibrator.load(MODEL_DIR / "lexical").min_probability
    assert parsed.get("in_sample") is (True if not extra else None)
    assert len(parsed["best_level_shares"]) == 4 and sum(parsed["best_level_shares"]) == pytest.approx(1.0, abs=1e-3)
    for key in ABSTENTION_KEYS - {"tau"}:
        assert 0.0 <= parsed[key] <= 1.0, key


def test_evaluate_abstention_needs_judgements(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from matching.evaluate import main

    folder = _write_dataset(tmp_path)
    (folder / "qrels.txt").write_text("", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main([str(folder), "--encoder", "lexical", "--abstention"])
    assert exit_info.value.code == 2
    assert "needs judgements" in capsys.readouterr().err
    (folder / "qrels.txt").unlink()
    with pytest.raises(SystemExit) as exit_info:
        main([str(folder), "--encoder", "lexical", "--abstention"])
    assert exit_info.value.code == 2


def test_evaluate_abstention_needs_three_folds(tmp_path: Path) -> None:
    from matching.evaluate import main

    folder = _write_dataset(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([str(folder), "--encoder", "lexical", "--abstention", "--cv", "2"])
    assert exit_info.value.code == 2


def test_save_model_writes_ranker_and_calibrator(tmp_path: Path) -> None:
    from matching.calibration import ProbabilityCalibrator
    from matching.evaluate import main
    from matching.ranking import PairwiseLinearRanker

    (tmp_path / "data").mkdir()
    folder = _write_dataset(tmp_path / "data")
    out = tmp_path / "model"
    result = main([str(folder), "--encoder", "lexical", "--cv", "3", "--save-model", str(out)])
    ranker = PairwiseLinearRanker.load(out)
    calibrator = ProbabilityCalibrator.load(out)
    assert ranker.meta_["trained_on"] == "data" and calibrator.meta_["folds"] == 3
    # The stored tau is the one the evaluator chose and reported for this model.
    assert calibrator.min_probability == result["tau"]
