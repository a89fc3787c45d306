"""bench/collaborative.py: ALS judged as a collaborative source never shows what was bought."""

from __future__ import annotations

from plugin.engine.evaluate import METRICS
from tests.engine.synthetic import weekly_history


def test_discovery_als_leaves_out_what_the_shopper_bought_before_the_request(collaborative):
    x = weekly_history()
    model = collaborative.DiscoveryALS(factors=4, iterations=3).fit(x)
    plain = collaborative.ALSBaseline(factors=4, iterations=3).fit(x)
    some_owned = False
    for shopper in map(str, x.user_ids[:10]):
        u = x.user_index(shopper)
        owned = {str(x.item_ids[i]) for i in x.item[x.user_ptr[u]:x.user_ptr[u + 1]]}
        recs = [r.item for r in model.recommend(shopper, 5)]
        assert recs and not set(recs) & owned
        some_owned |= bool({r.item for r in plain.recommend(shopper, 5)} & owned)
    assert some_owned  # the plain baseline does show owned items: the exclusion matters


def test_table_has_a_row_per_dataset_and_model(collaborative):
    metrics = dict.fromkeys(METRICS, 0.5)
    results = {"online-retail": {"users": 3, "models": {"ease": metrics, "als": metrics}}}
    table = collaborative.render(results).splitlines()
    assert table[0].startswith("| dataset | model | new-item R@10 |")
    assert len(table) == 4 and table[2].startswith("| online-retail | ease | 0.5000 |")


def test_replace_marked_keeps_the_prose_around_the_block(common, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- a -->\nold\n<!-- b -->\noutro\n", encoding="utf-8")
    common.replace_marked(readme, "<!-- a -->", "<!-- b -->", "new table\n")
    assert readme.read_text(encoding="utf-8") == "intro\n<!-- a -->\nnew table\n<!-- b -->\noutro\n"


def test_publish_keeps_datasets_not_rerun_and_orders_them(common, tmp_path, monkeypatch):
    (tmp_path / "bench").mkdir()
    readme = tmp_path / "bench" / "README.md"
    readme.write_text("a\n<!-- demo:begin -->\nold\n<!-- demo:end -->\nb\n", encoding="utf-8")
    monkeypatch.setattr(common, "ROOT", tmp_path)
    common.publish("demo", {"second": 2}, ["first", "second"], lambda r: "table")
    merged = common.publish("demo", {"first": 1}, ["first", "second"],
                            lambda r: " ".join(r))
    assert list(merged) == ["first", "second"] and merged["second"] == 2
    text = readme.read_text(encoding="utf-8")
    assert "by `python bench/demo.py`.\n\nfirst second\n<!-- demo:end -->\nb\n" in text
    assert (tmp_path / "bench" / "results" / "demo.json").exists()
