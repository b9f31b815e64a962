"""The skill vocabulary: normalisation, synonyms, merged tags."""
from __future__ import annotations

import pytest

from chanjiao.errors import ValidationFailed
from chanjiao.extensions import db
from chanjiao.skills import find_skill, resolve_skills, seed_vocabulary


def test_synonyms_and_full_width_resolve_to_the_canonical_tag(app):
    seed_vocabulary([("桥式起重机司机", ["天车工", "行车工"]), ("Python开发", ["Python 编程"])])
    db.session.commit()
    crane = find_skill("桥式起重机司机")
    assert find_skill("天车工") is crane
    assert find_skill("  天车工 ") is crane
    assert find_skill("Ｐｙｔｈｏｎ开发").name == "Python开发"
    assert resolve_skills(["天车工", "桥式起重机司机", "行车工"]) == [crane]


def test_unknown_tags_are_created_or_refused(app):
    created = resolve_skills(["直播运营"])
    assert created[0].id is not None and created[0].name == "直播运营"
    with pytest.raises(ValidationFailed) as error:
        resolve_skills(["无人机植保"], create=False)
    assert error.value.field == "skills" and "未知技能" in error.value.message
    with pytest.raises(ValidationFailed):
        resolve_skills(["长" * 51])


def test_merged_tag_resolves_to_survivor(app):
    seed_vocabulary([("养老护理", []), ("老年照护", [])])
    db.session.commit()
    survivor, merged = find_skill("养老护理"), find_skill("老年照护")
    merged.merged_into = survivor
    db.session.commit()
    assert find_skill("老年照护") is survivor


def test_seed_vocabulary_is_idempotent(app):
    vocabulary = [("中式烹调", ["中餐烹饪"])]
    assert seed_vocabulary(vocabulary) == 1
    assert seed_vocabulary(vocabulary) == 0
    assert find_skill("中式烹调").synonyms == ["中餐烹饪"]
