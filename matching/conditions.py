"""Requirement lines that training cannot supply (非培训条件).

An enterprise demand lists requirement lines; the platform counts the ones no programme covers
as training gaps. Some lines state conditions no course can meet — experience, working hours,
age, health, availability, personal circumstances — and must never count as gaps, otherwise
every demand looks under-served and programmes are blamed for gaps they cannot close.

The rules, and why:

* The test is "could a course or a school give the candidate this?". Skills, knowledge,
  equipment operation, software, standards, safety knowledge, communication, duties and
  certificates a course prepares for (低压电工作业证, 叉车证, 健康管理师证, 驾驶证) are trainable.
  So are diplomas and majors (学历, 专业): the education side of this platform (vocational
  schools) is exactly what supplies them.
* Experience is time spent doing the job, which a course cannot compress: "N年以上…经验",
  "有…经验/经历", 工龄, 驾龄, "做过/曾在…", 熟练工. "有叉车操作经验" is experience even though
  driving a forklift is trainable, because the line asks for the time, not the skill. Lines
  that merely mention experience (总结经验, 借鉴先进经验, 经验丰富的师傅带教) are not conditions.
* Schedule conditions are the candidate's willingness to work certain hours (能适应/接受 倒班,
  夜班, 出差…) or statements of the hours themselves (三班倒, 做六休一, 工作时间8:30-17:30).
  The same nouns inside knowledge or duties (熟悉倒班交接流程, 出差报销流程, 负责晚班闭店盘点)
  describe trainable work content, so a clause led by a knowledge or duty verb (熟悉, 了解,
  掌握, 负责…) is never a condition.
* Age is the candidate's age (年龄…, 45岁以下, 18-45周岁); ages of the people served
  (0-3岁婴幼儿, 80岁以上失能老人) and words that only contain the characters (老年护理,
  年龄段营养) are trainable content.
* Health covers the body and the working environment it must bear: 身体健康, 视力, 色盲, 身高,
  恐高, 体检, 健康证 (a medical certificate, not a course certificate), and tolerance of heat,
  cold, outdoor work, standing or lifting (能在高温环境下工作). Being *able to do* work at
  height ("从事高处作业") is a skill with a special-operation certificate and stays trainable;
  only the physical side (身体条件, 无恐高症, 适应高空) is health.
* Availability is when and how long the candidate can work: 尽快/N周内到岗, 长期稳定, 合同年限,
  试用期, 全职/实习时间.
* Personal is the catch-all for who the candidate is: residence and 户籍, gender, record
  (无犯罪记录), status (应届, 退休, 党员, 退役军人, 婚育), belongings (自备电动车), and
  character or attitude (品行端正, 吃苦耐劳, 服从安排, 责任心强, 团队合作精神, 学习能力强,
  抗压). Abilities that courses train (沟通/表达/组织协调/团队协作能力) stay trainable: the rule
  is that an attitude (…心, …精神, 品…) is personal, a named ability (…能力) is trainable.
* Statements in either direction (经验不限, 年龄不限, 男女不限) are still conditions: they say
  nothing a course could supply.
* A line is judged clause by clause. A clause that shows trainable content (a certificate, a
  knowledge or skill verb, a standard, a procedure, a named ability) keeps the whole line a
  training gap even next to a condition: in "持有电工证，能适应倒班" the certificate is a real
  gap, and dropping the line would hide it. A clause with neither a condition nor such a cue
  ("每月休息四天", "雇主口碑好") only elaborates its neighbour and does not count. For several
  conditions the first clause's kind wins, except that "personal" (the catch-all) yields to
  any more specific kind.
* Patterns and a classifier decide together. The patterns are precise but their recall is
  bounded by their vocabulary (on lines written after they were tuned they found roughly half
  of the conditions), so:

  1. when a clause is led by a knowledge or duty verb (熟悉, 掌握, 负责…) the line is trainable;
  2. when the patterns find a condition and no clause shows trainable content, it is one, of
     the kind the patterns give;
  3. otherwise a classifier decides: character 1–3-gram TF-IDF of the normalised line (numbers
     written 0) and a logistic regression, trained on tests/data/requirement_conditions.tsv,
     with a threshold on P(condition) chosen by cross-validation on that file. When a clause
     showed a trainable cue, that clause must pass the threshold too, so a certificate next to
     a condition still keeps the line a gap. The kind then comes from a second logistic
     regression over the six kinds.

  The model is ``model/conditions/conditions.json`` (parameters, vocabulary, threshold) and
  ``conditions_*.npy`` arrays, read with ``allow_pickle=False`` on first use. The transform is
  reproduced here without scikit-learn, which is needed only to retrain:
  ``python -m matching.conditions --train tests/data/requirement_conditions.tsv --out
  matching/model/conditions``. The figures are in tests/test_conditions.py.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["NON_TRAINING_KINDS", "non_training_kind", "is_non_training_condition"]

NON_TRAINING_KINDS: tuple[str, ...] = (
    "experience",
    "age",
    "schedule",
    "health",
    "availability",
    "personal",
)

# --- normalisation -------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_NUM = "零〇一二两三四五六七八九十百"
# Chinese numerals are rewritten only where they count something a condition is about
# (years, ages, months, days, shifts), so words such as 一线, 一般, 三甲 are left alone.
_CN_NUMBER = re.compile(
    rf"(?<=[做休])[{_CN_NUM}]+"
    rf"|[{_CN_NUM}]+(?=\s*(?:个|多|余)?\s*(?:周岁|岁|年|个月|月|周|星期|天|日|次|点|小时|公斤|斤|班|运转|休|%|至|到|-|~|—))"
)
_LIST_MARKER = re.compile(r"^(?:\(?\d{1,2}[)、]|\d{1,2}\.(?!\d)|[①-⑳]|[-•·*])")
_SPACE = re.compile(r"(?<![A-Za-z0-9])\s+|\s+(?![A-Za-z0-9])")
_CLAUSE_SEP = re.compile(r"[,;。!?\n]+")


def _cn_to_int(s: str) -> int:
    if all(ch in _CN_DIGITS for ch in s):
        if len(s) == 1:
            return _CN_DIGITS[s]
        return int("".join(str(_CN_DIGITS[ch]) for ch in s))
    total = cur = 0
    for ch in s:
        if ch in _CN_DIGITS:
            cur = _CN_DIGITS[ch]
        elif ch == "十":
            total += (cur or 1) * 10
            cur = 0
        elif ch == "百":
            total += (cur or 1) * 100
            cur = 0
    return total + cur


def _normalise(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).strip().lower()
    s = _SPACE.sub("", s)
    s = s.replace("—", "-").replace("–", "-").replace("～", "~").replace("〜", "~")
    s = re.sub(r"(?<![\d.])半年", "0.5年", s)
    s = _CN_NUMBER.sub(lambda m: str(_cn_to_int(m.group())), s)
    s = _LIST_MARKER.sub("", s)
    return s


# --- clause patterns -----------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_SEG = r"[^,;]"  # any character within the clause

# A clause led by a knowledge or duty verb states trainable content, whatever nouns follow.
_LEAD = re.compile(
    r"^(?:需要?|须|要求|能够?|可以?)?(?:具备|具有|有)?(?:较强|良好|一定|扎实|较好)?的?"
    r"(?:熟悉|了解|掌握|熟练(?!工|的)|精通|懂得?|理解|知晓|通晓|负责|协助|编制|制定|指导|"
    r"会使用|规范填写|正确)"
)

# What a clause must show to count as trainable content next to a condition: a certificate, a
# skill or knowledge verb, or the name of something taught. A clause with neither a condition
# nor such a cue ("每月休息四天", "雇主口碑好") only elaborates the condition beside it.
_TRAINABLE_CUE = re.compile(
    r"证|资格|执照|职称|等级|熟悉|了解|掌握|熟练|精通|懂|会(?!议)|使用|操作|驾驶|维修|维护|保养|安装|调试|"
    r"编程|开发|设计|制作|烹|技能|技术|技巧|工艺|知识|常识|软件|系统|规范|规程|标准|流程|方法|能力|"
    r"处理|完成|负责|识读|分析|核算|管理|护理|照护|检测|测量|编写|撰写|英语|学历|专业"
)

# Clauses that qualify another clause and carry no requirement of their own.
_NEUTRAL = re.compile(
    r"^(?:[^\w]*|.|(?:条件|能力|表现)?(?:特别)?(?:优秀|突出)?者?(?:可以?)?(?:适当)?放宽(?:条件)?"
    r"|(?:者|的)?优先(?:考虑|录用)?|待遇(?:从优|面议)|薪资面议|均可|亦可|不限"
    r"|(?:每(?:周|月|天|日|年)|平均)?(?:约|大约|大概)?\d+(?:\.\d+)?(?:次|天|小时|%)(?:左右)?)$"
)

_EXPERIENCE = [
    re.compile(rf"(?:有|具有|具备|拥有|具|有过){_SEG}{{0,30}}?(?:经验|经历|阅历|(?:行业|专业|从业|工作)的?背景)"),
    re.compile(rf"{_NUM}(?:个)?(?:多)?(?:年|个月)(?:及|或)?(?:以上|之上)?{_SEG}{{0,25}}?(?:经验|经历|从业|工龄|驾龄)"),
    re.compile(rf"(?:经验|经历|工龄|驾龄|从业|从事{_SEG}{{0,12}}?工作|工作过?|任职)(?:满|达)?{_NUM}(?:个)?(?:多)?(?:年|个月)"),
    re.compile(r"工龄|驾龄|从业年限|司龄"),
    # A clause that is nothing but a span of years can only be asking for experience.
    re.compile(rf"^{_NUM}(?:个)?(?:多)?(?:年|个月)(?:及|或)?(?:以上|之上)$"),
    re.compile(r"经验(?:丰富|不限|优先|者优先|可放宽)(?!的)|(?:无|没有|零)经验(?:可|亦可|也可|均可)"),
    re.compile(r"熟练工|熟手|新手可带|老手|零基础|有无经验|无经验|经验要求|资历|年资"),
    re.compile(r"做过|干过|当过|担任过|曾在|曾经在|曾任|曾担任|曾从事"),
]

# Persons served: an age in front of one of these is the client's, not the candidate's.
_SERVED = r"(?:的)?(?:婴|幼|儿|童|宝宝|孩|小朋友|青少年|少年|未成年|新生儿|学员|成年人|中老年|老人|老年|长者|高龄|失能|失智|患|病人|学生|顾客|客户|客人|人群|居民|住户|用户|会员|产妇|孕妇)"
_SERVICE_VERB = re.compile(rf"(?:为|给|对|根据|照护|照顾|护理|看护|服务|接待|教|辅导|针对|面向){_SEG}{{0,8}}$")
_AGE_WORD = re.compile(
    rf"(?<!老)(?:年龄|年纪|岁数)(?!段|层|结构|特点|特征|阶段|分布){_SEG}{{0,8}}?"
    r"(?:\d|不限|不超过|不大于|不高于|上限|下限|限|以下|以内|以上|适中|相符|要求)"
)
_AGE_NUMBER = re.compile(
    r"(?:年满\d+)|(?:\d+(?:周岁|岁)?[-~至到]\d+(?:周岁|岁)|\d+(?:周岁|岁))"
    r"(?:以下|以上|以内|之间|左右|上下|及以下|及以上|之内|为宜|优先)?"
)

_SCHEDULE_NOUN = (
    r"(?:倒班|夜班|晚班|早班|中班|早晚班|白夜班|轮班|换班|值班|值夜班|加班|出差|驻场|驻外|外派|夜间(?:工作|上班|作业|值守|值班)|"
    r"轮休|倒休|调休|住家|白班|待命|值守|跨夜|通宵|凌晨|(?:夜间|周末|节假日|凌晨|通宵)[^,;]{0,4}?(?:施工|作业|工作|上班|营业|值守|加班|出勤|到岗)|弹性工作|弹性工时|不定时工作|作息|工作时间(?:安排|不固定)|班次|\d班倒|"
    r"(?:外地|异地|外省|京外)(?:工作|项目|驻|出差|常驻))"
)
_SCHEDULE_AFTER_VETO = r"(?:流程|制度|记录|规定|报销|审批|费|工时|管理|安全|规范|要点|注意事项|交接|申请|统计|核算|操作)"
_SCHEDULE = [
    re.compile(
        rf"(?:能|可|愿|需|须|要|服从|接受|适应|配合|承担){_SEG}{{0,12}}?{_SCHEDULE_NOUN}(?!{_SEG}{{0,4}}{_SCHEDULE_AFTER_VETO})"
    ),
    re.compile(
        rf"^{_SCHEDULE_NOUN}$|\d班倒|倒班制|轮班制|\d班\d运转|做\d休\d|[月周]休\d|单休|双休|大小周|综合工时|不定时工作制|"
        r"(?:周末|节假日|法定假日|春节|假期|节日)(?:期间)?(?:加班|值班|上班|工作|在岗|轮休|不休|正常上班)|"
        r"\d+小时(?:工作制|值班|轮班|轮岗|在岗)|(?:每月|每周|月|周)(?:休息|休)\d+天|\d+点(?:前|后|半)?(?:到岗|到店|上班|下班|开工|打卡|收工)|(?:每天|每日|日|每周)工作\d+(?:小时|天)|"
        r"(?:工作|上班)时间[:为是]?(?:\d|早|上午|朝)|[早朝]\d+晚\d+|\d{1,2}:\d{2}[-~至到]\d{1,2}:\d{2}|"
        r"(?:实行|实施|采取|执行)[^,;]{0,6}(?:班|工时|工作制)|外派|驻外|驻场|驻点|常驻|长期在外|随叫随到|全天候|无休|住家|"
        r"(?:经常|偶尔|频繁|不定期|短期|长期)(?:出差|加班|值班|夜班|倒班)|"
        rf"(?:出差|加班|夜班|值班)(?:时间|比例|频率|较多|频繁|占|{_SEG}{{0,2}}(?:补贴|津贴))"
    ),
]

_HEALTH = [
    re.compile(
        r"身体健康|体健|健康状况良好|身体(?:素质|条件|状况)(?!.{0,4}(?:训练|课程|测试|锻炼|评估))|"
        r"体格(?:健壮|强壮)|体检合格|通过体检|入职体检|职业禁忌|健康证(?!.{0,3}办理流程)"
    ),
    re.compile(r"无[^,;]{0,12}?(?:病|症|禁忌|恐高|色盲|色弱|残疾|口吃|晕车|晕船|晕血|过敏)"),
    re.compile(rf"(?:承受|耐受|适应){_SEG}{{0,12}}?环境|零下\d|四肢(?:健全|灵活|健康)|"
               r"体能|体力(?:好|充沛|佳)|身强力壮|力气大|四肢健全|肢体健全|非孕期|怀孕|孕期"),
    re.compile(
        r"色盲|色弱|辨色(?:力)?(?:正常|良好)|恐高|视力(?:良好|正常|好|佳|\d|在|要求|不低于)|(?:裸眼|矫正)视力|"
        r"听力(?:正常|良好)|嗅觉(?:正常|灵敏)|身高(?:\d|在|要求|不低于|不少于|以上)|"
        r"体重(?:\d|在|要求|适中|不超过)"
    ),
    # Bearing an environment or a physical load.
    re.compile(
        r"(?:能|可|可以|能够|适应|承受|耐受|接受|胜任|不怕|吃得消|经得起)[^,;]{0,10}?"
        r"(?:高温|低温|冷库|严寒|粉尘|噪音|噪声|异味|户外|室外|露天|日晒|体力|站立|久站|搬抬|"
        r"搬运(?!车|设备|工具|机器人)|负重|弯腰|蹲|行走|走动|步行|爬楼|长时间|长途|工作强度|劳动强度)"
    ),
    # Height only when the clause is about tolerating it, not about doing the work.
    re.compile(r"(?:适应|承受|不怕|不恐|胜任)[^,;]{0,6}?(?:高空|高处|井下)"),
]

_AVAILABILITY = [
    re.compile(
        r"(?:尽快|尽早|随时|即刻|立即|马上|立刻|\d+(?:个)?(?:月|周|星期|天|日|工作日)(?:内|之内|以内)|"
        r"月底|月初|年底|下周|本周|近期|当月|面试(?:通过)?后)[^,;]{0,8}?(?:可以?|能够?)?"
        r"(?:到岗|入职|上岗|上户|进驻|报到|就职|上班)"
    ),
    re.compile(r"(?:到岗|入职)时间|(?:到岗|入职)[^,;]{0,3}(?:尽快|及时)"),
    re.compile(
        r"长期(?:稳定)?(?:工作|任职|合作|在岗|从事|干|发展|服务)|稳定(?:工作|任职)|工作稳定|"
        r"稳定性(?:好|强|高)|频繁跳槽|(?:签订?|签署)[^,;]{0,4}\d+年(?:以上|及以上)?(?:的)?(?:劳动)?合同|"
        r"(?:短期|临时)工(?!作)|长期工|试用期|服务期|合同期|聘期|服务年限|档期|已离职|离职状态|待业|全职|兼职|(?:寒暑假|假期|课余)[^,;]{0,4}(?:实习|兼职|工作)|实习期|"
        r"每周[^,;]{0,4}(?:\d+天|到岗)|(?:能|可)(?:保证|确保)?(?:出勤|到岗)"
    ),
]

# A promise to stay for a span of years reads like an experience span ("工作1年以上").
_COMMITMENT = re.compile(
    rf"(?:保证|确保|承诺|至少能){_SEG}{{0,4}}?(?:工作|服务|在岗|任职|干)(?:满)?{_NUM}(?:个)?(?:年|月)"
    rf"|^(?:能|可|愿意?)(?:连续|稳定|持续|长期)?(?:工作|服务|在岗|干|做)(?:至少|不少于|满)?{_NUM}(?:个)?(?:年|月)"
)

_PERSONAL = [
    # residence
    re.compile(
        r"户籍|户口|京籍|京户|本地户|本市户|外地户|居住证|家住|家在|住在|居住在|居住于|现居|常住|"
        r"(?:附近|周边|一带)(?:居住|者?优先)|本地人|北京人|北京本地|本地(?:户|居民|优先|常住)|就近|通勤"
    ),
    # gender
    re.compile(r"性别(?:不限|要求|限|:|为)|男女不限|男女均可|(?:^|[限仅])(?:男|女)(?:性|士)?(?:优先|不限|均可|$)"),
    # record and identity
    re.compile(
        r"犯罪|不良记录|不良嗜好|不良信用|失信|政审|背景调查|背景审查|背景清白|身份证|"
        r"无[^,;]{0,6}(?:事故|违章|违法)(?:记录)?"
    ),
    # character and attitude
    re.compile(
        r"品行|品德|品质(?:好|优良|良好)|人品|道德|为人|诚实|诚信|守信|正直|踏实|稳重|勤劳|勤快|勤奋|肯干|"
        r"吃苦|耐劳|服从|听从(?:指挥|安排)|责任心|责任感|上进心|进取心|事业心|"
        r"(?:爱心|耐心|细心|热心)(?=[,、和与及强好]|$)|亲和力|"
        r"性格(?!.{0,3}(?:客户|顾客|老人|儿童|特点|特征|类型|分析))|开朗|外向|乐观|"
        r"形象(?:气质)?(?:佳|好|良好|端正|大方)|气质(?:佳|好)|五官端正|相貌|容貌|纹身|文身|"
        r"遵纪守法|敬业|忠诚|操守|口碑|职业道德|修养|本分|老实|自律|守时|征信|信用记录|籍贯|婚姻|"
        r"家庭(?:稳定|和睦|和谐)|待人热情|热情(?:大方|开朗|主动)|"
        r"认真细致|认真负责|积极主动|团队(?:合作|协作)?精神|集体荣誉|尊重|"
        r"^(?:喜欢|热爱|喜爱)|学习能力强|抗压|承压|(?:承受|面对)[^,;]{0,6}压力"
    ),
    # status and belongings
    re.compile(
        r"应届|往届|毕业生(?:亦可|可|优先|均可)|在校生|在校学生|退休|退役军人|复员|转业|军人|党员|团员|"
        r"已婚|未婚|已育|婚育|残疾人|自备|私家车|自有车辆|名下|担保人"
    ),
]


def _age_is_candidates(clause: str) -> bool:
    if _AGE_WORD.search(clause):
        return True
    for m in _AGE_NUMBER.finditer(clause):
        if re.match(_SERVED, clause[m.end():]):
            continue
        if _SERVICE_VERB.search(clause[: m.start()]):
            continue
        return True
    return False


def _clause_kinds(clause: str) -> list[str]:
    """Kinds of condition a clause states, the most telling first."""
    kinds = []
    if _COMMITMENT.search(clause):
        kinds.append("availability")  # years promised ahead, not years behind
    elif any(p.search(clause) for p in _EXPERIENCE):
        kinds.append("experience")
    if _age_is_candidates(clause):
        kinds.append("age")
    if any(p.search(clause) for p in _SCHEDULE):
        kinds.append("schedule")
    if any(p.search(clause) for p in _HEALTH):
        kinds.append("health")
    if any(p.search(clause) for p in _AVAILABILITY):
        kinds.append("availability")
    if any(p.search(clause) for p in _PERSONAL):
        kinds.append("personal")
    return kinds



# --- the rules' verdict --------------------------------------------------------------------

_CONDITION = "condition"  # a clause states a condition (and none shows trainable content)
_TRAINABLE = "trainable"  # a clause is led by a knowledge or duty verb: trainable, final
_CUE = "cue"  # a clause without a condition shows a trainable cue
_SILENT = "silent"  # the rules found nothing either way


def _rule_verdict(text: str) -> tuple[str, str | None]:
    """What the patterns say about a line: the verdict, with the kind for ``_CONDITION`` and
    the (normalised) clause that showed the trainable cue for ``_CUE``."""
    found: list[str] = []
    for clause in _CLAUSE_SEP.split(_normalise(text)):
        if _NEUTRAL.match(clause):
            continue
        if _LEAD.match(clause):
            return _TRAINABLE, None  # knowledge or duty: trainable content
        kinds = _clause_kinds(clause)
        if kinds:
            found.append(kinds[0])
        elif _TRAINABLE_CUE.search(clause):
            return _CUE, clause  # a clause with trainable content keeps the line a training gap
    if not found:
        return _SILENT, None
    specific = [k for k in found if k != "personal"]
    return _CONDITION, specific[0] if specific else found[0]


# --- the learned part ----------------------------------------------------------------------

MODEL_DIR = Path(__file__).resolve().parent / "model" / "conditions"
_FORMAT = 1
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WHITE_SPACES = re.compile(r"\s\s+")  # what scikit-learn's char analyzer collapses

#: Training parameters; changing one changes the shipped model (retrain, then commit both).
PARAMS: dict = {
    "ngram_range": [1, 3],  # character n-grams of the normalised line
    "min_df": 2,
    "sublinear_tf": True,
    "C": 10.0,  # inverse L2 strength of both logistic regressions
    "class_weight": "balanced",
    "max_iter": 5000,
    "folds": 5,
    "random_state": 0,
    # The threshold on P(condition) maximises F0.5 (precision weighted twice) of the learned
    # part (classifier behind the knowledge-verb veto) on out-of-fold probabilities.
    "threshold_grid": [0.30, 0.90, 0.01],
    "threshold_beta": 0.5,
}


def _model_text(text: str) -> str:
    """The line as the classifier sees it: normalised, every number written 0."""
    return _NUMBER.sub("0", _normalise(text))


def _char_ngrams(s: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's ``analyzer="char"`` n-grams of an already preprocessed string."""
    s = _WHITE_SPACES.sub(" ", s)
    n_chars = len(s)
    grams = []
    for n in range(lo, min(hi + 1, n_chars + 1)):
        grams += [s[i: i + n] for i in range(n_chars - n + 1)]
    return grams


class _Model:
    """Character n-gram TF-IDF with two logistic regressions (condition?, which kind?).

    The transform reproduces scikit-learn's ``TfidfVectorizer(analyzer="char",
    preprocessor=_model_text, norm="l2")`` from the stored vocabulary and idf.
    """

    def __init__(self, doc: dict, arrays: dict[str, np.ndarray]) -> None:
        self.doc = doc
        self.params = doc["params"]
        self.vocabulary = {term: i for i, term in enumerate(doc["vocabulary"])}
        self.threshold = float(doc["threshold"])
        self.kinds = tuple(doc["kinds"])
        self.arrays = arrays
        self._idf = arrays["idf"].tolist()
        self._coef = arrays["coef"].tolist()
        self._intercept = float(arrays["intercept"][0])
        self._kind_coef = arrays["kind_coef"]
        self._kind_intercept = arrays["kind_intercept"]

    def features(self, text: str) -> dict[int, float]:
        """The line's l2-normalised TF-IDF row as {column: value}."""
        lo, hi = self.params["ngram_range"]
        counts: dict[int, int] = {}
        for gram in _char_ngrams(_model_text(text), lo, hi):
            j = self.vocabulary.get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        sub = self.params["sublinear_tf"]
        row = {j: ((1.0 + math.log(c)) if sub else float(c)) * self._idf[j] for j, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in row.values()))
        return {j: v / norm for j, v in row.items()} if norm else {}

    def probability(self, row: dict[int, float]) -> float:
        """P(the line states a non-training condition)."""
        z = self._intercept + sum(self._coef[j] * v for j, v in row.items())
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def kind(self, row: dict[int, float]) -> str:
        """The most probable kind of condition."""
        cols = np.fromiter(row.keys(), dtype=np.intp, count=len(row))
        vals = np.fromiter(row.values(), dtype=np.float64, count=len(row))
        scores = self._kind_coef[:, cols] @ vals + self._kind_intercept
        return self.kinds[int(np.argmax(scores))]


def _learned_kind(text: str, verdict: str, detail: str | None, model: _Model) -> str | None:
    """The learned part: the classifier's answer behind the knowledge-verb veto."""
    if verdict == _TRAINABLE:
        return None
    row = model.features(text)
    if not row or model.probability(row) < model.threshold:
        return None
    if verdict == _CUE:
        # The cue word may be a false alarm ("学历不限", "不怕脏…处理…"): the line is a condition
        # only if the classifier also finds the clause that showed the cue to be one, so that
        # "持有电工证，能适应倒班" stays a training gap.
        clause_row = model.features(detail)
        if not clause_row or model.probability(clause_row) < model.threshold:
            return None
    return model.kind(row)


def _decide(text: str, model: _Model) -> str | None:
    """Rules where they find a condition, otherwise the learned part (see the docstring)."""
    if not text or not text.strip():
        return None
    verdict, detail = _rule_verdict(text)
    if verdict == _CONDITION:
        return detail
    return _learned_kind(text, verdict, detail, model)


_ARRAYS = ("idf", "coef", "intercept", "kind_coef", "kind_intercept")


def load_model(directory: Path | str = MODEL_DIR) -> _Model:
    """Read ``conditions.json`` and the ``conditions_<array>.npy`` files (never a pickle)."""
    d = Path(directory)
    doc = json.loads((d / "conditions.json").read_text(encoding="utf-8"))
    if doc.get("format") != _FORMAT:
        raise ValueError(f"{d / 'conditions.json'}: unknown format {doc.get('format')!r}")
    arrays = {name: np.load(d / f"conditions_{name}.npy", allow_pickle=False) for name in _ARRAYS}
    n = len(doc["vocabulary"])
    if arrays["idf"].shape != (n,) or arrays["coef"].shape != (n,) or arrays["kind_coef"].shape != (
        len(doc["kinds"]), n
    ):
        raise ValueError(f"{d}: arrays do not match the vocabulary")
    return _Model(doc, arrays)


_MODEL: _Model | None = None
_MODEL_LOCK = threading.Lock()


def _model() -> _Model:
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                _MODEL = load_model()
    return _MODEL


# --- public API ----------------------------------------------------------------------------


def non_training_kind(text: str) -> str | None:
    """The kind of non-training condition a requirement line states, or None when training can
    supply it (or any part of it).

    The kind is one of NON_TRAINING_KINDS. See the module docstring for the rules.
    """
    if not text or not text.strip():
        return None
    return _decide(text, _model())


def is_non_training_condition(text: str) -> bool:
    """True when ``text`` states a condition training cannot supply."""
    return non_training_kind(text) is not None


# --- training (scikit-learn is needed here only) -------------------------------------------


def read_lines(path: Path | str) -> list[tuple[bool, str | None, str]]:
    """``(label, kind, text)`` rows of a ``label<TAB>kind<TAB>text`` file (kind ``-`` for 0)."""
    with Path(path).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames != ["label", "kind", "text"]:
            raise ValueError(f"{path}: header must be label, kind, text")
        return [(r["label"] == "1", None if r["kind"] == "-" else r["kind"], r["text"]) for r in reader]


def _vectorizer(params: dict, vocabulary: dict[str, int] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char",
        preprocessor=_model_text,
        ngram_range=tuple(params["ngram_range"]),
        min_df=1 if vocabulary is not None else params["min_df"],
        sublinear_tf=params["sublinear_tf"],
        vocabulary=vocabulary,
        dtype=np.float64,
    )


def _precision_recall(predicted: Sequence[bool], labels: Sequence[bool]) -> tuple[float, float]:
    tp = sum(1 for p, y in zip(predicted, labels) if p and y)
    n_pred, n_pos = sum(map(bool, predicted)), sum(map(bool, labels))
    return (tp / n_pred if n_pred else 0.0), (tp / n_pos if n_pos else 0.0)


def _fit_arrays(texts: Sequence[str], labels: Sequence[bool], kinds: Sequence[str | None], params: dict):
    """Vocabulary and arrays of the two logistic regressions fitted on the lines."""
    from sklearn.linear_model import LogisticRegression

    vec = _vectorizer(params)
    x = vec.fit_transform(texts)
    y = np.asarray(labels, dtype=bool)
    clf = LogisticRegression(
        C=params["C"], class_weight=params["class_weight"], max_iter=params["max_iter"]
    ).fit(x, y)
    pos = np.flatnonzero(y)
    kind_clf = LogisticRegression(C=params["C"], max_iter=params["max_iter"]).fit(
        x[pos], [kinds[i] for i in pos]
    )
    vocabulary = [None] * len(vec.vocabulary_)
    for term, j in vec.vocabulary_.items():
        vocabulary[j] = term
    arrays = {
        "idf": vec.idf_.astype(np.float64),
        "coef": clf.coef_[0].astype(np.float64),
        "intercept": clf.intercept_.astype(np.float64),
        "kind_coef": kind_clf.coef_.astype(np.float64),
        "kind_intercept": kind_clf.intercept_.astype(np.float64),
    }
    return vocabulary, [str(k) for k in kind_clf.classes_], arrays


def _out_of_fold(texts: Sequence[str], labels: Sequence[bool], kinds: Sequence[str | None], params: dict):
    """Out-of-fold P(condition) of every line (stratified folds, fixed seed)."""
    from sklearn.model_selection import StratifiedKFold

    proba = np.zeros(len(texts))
    folds = StratifiedKFold(params["folds"], shuffle=True, random_state=params["random_state"])
    for train, test in folds.split(np.zeros(len(texts)), np.asarray(labels, dtype=bool)):
        m = _build([texts[i] for i in train], [labels[i] for i in train], [kinds[i] for i in train],
                   params, threshold=0.5)
        for i in test:
            row = m.features(texts[i])
            proba[i] = m.probability(row) if row else 0.0
    return proba


def _choose_threshold(texts: Sequence[str], labels: Sequence[bool], proba: np.ndarray, params: dict) -> float:
    """The grid threshold with the best out-of-fold F-beta of the learned part."""
    vetoed = [_rule_verdict(t)[0] == _TRAINABLE for t in texts]
    lo, hi, step = params["threshold_grid"]
    beta2 = params["threshold_beta"] ** 2
    best, best_f = lo, -1.0
    for k in range(int(round((hi - lo) / step)) + 1):
        t = round(lo + k * step, 4)
        p, r = _precision_recall([(q >= t) and not v for q, v in zip(proba, vetoed)], labels)
        f = (1 + beta2) * p * r / (beta2 * p + r) if p + r else 0.0
        if f > best_f + 1e-12:
            best, best_f = t, f
    return best


def _build(texts, labels, kinds, params: dict, threshold: float | None = None) -> _Model:
    """A model fitted on the lines; the threshold by cross-validation on them unless given."""
    texts, labels, kinds = list(texts), [bool(y) for y in labels], list(kinds)
    if threshold is None:
        threshold = _choose_threshold(texts, labels, _out_of_fold(texts, labels, kinds, params), params)
    vocabulary, kind_names, arrays = _fit_arrays(texts, labels, kinds, params)
    doc = {
        "format": _FORMAT,
        "params": params,
        "threshold": threshold,
        "kinds": kind_names,
        "vocabulary": vocabulary,
    }
    return _Model(doc, arrays)


def train(path: Path | str, params: dict | None = None) -> _Model:
    """Fit the classifier on a labelled file and choose its threshold by cross-validation."""
    rows = read_lines(path)
    p = dict(PARAMS if params is None else params)
    m = _build([t for _, _, t in rows], [y for y, _, _ in rows], [k for _, k, _ in rows], p)
    m.doc["training"] = {
        "file": Path(path).name,
        "lines": len(rows),
        "positives": sum(1 for y, _, _ in rows if y),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
    }
    return m


def save_model(model: _Model, directory: Path | str) -> None:
    """Write ``conditions.json`` and ``conditions_<array>.npy`` (no pickle)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "conditions.json").write_text(
        json.dumps(model.doc, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
    )
    for name in _ARRAYS:
        np.save(d / f"conditions_{name}.npy", np.ascontiguousarray(model.arrays[name]), allow_pickle=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matching.conditions", description="Train the non-training-condition classifier."
    )
    parser.add_argument("--train", required=True, type=Path, help="labelled lines (label, kind, text TSV)")
    parser.add_argument("--out", default=MODEL_DIR, type=Path, help=f"model directory (default {MODEL_DIR})")
    args = parser.parse_args(argv)
    model = train(args.train)
    save_model(model, args.out)
    t = model.doc["training"]
    print(f"{args.out}: {t['lines']} lines ({t['positives']} conditions), "
          f"{len(model.vocabulary)} n-grams, threshold {model.threshold:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
