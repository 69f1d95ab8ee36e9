"""benchmarks/page.py: the page-timing section of docs/benchmarks.md says which targets each interaction met."""


def test_the_page_figures_section_says_which_targets_are_met():
    from benchmarks import page

    report = {"measured": "2026-12-03 04:00 UTC", "cores": 2, "products": 24, "load_average": [11.0, 12.5],
              "seconds": {"first start to a usable page": [30.0], "example click to top 5": [0.4, 0.9, 3.0],
                          "filter change to new results": [0.6, 0.8, 0.7]}}
    text = "\n".join(page.section(report))
    assert "| example click to top 5 | 3 | 0.90 | 3.00 | ≤ 1 s: met |" in text
    assert "| filter change to new results | 3 | 0.70 | 0.80 | ≤ 0.5 s: not met |" in text
    assert "The machine was busy" in text and "this run built 24" in text
    # a first start with 24 products says nothing of the target for 400
    assert "| first start to a usable page | 1 | 30.00 | 30.00 | ≤ 90 s with 400 products: not measured |" in text
    assert "nice 19" not in text  # the server and browser run at normal priority


def test_the_page_figures_section_says_what_else_ran():
    from benchmarks import page

    report = {"measured": "2026-12-03 04:00 UTC", "cores": 2, "products": 400, "load_average": [1.5, 1.2],
              "seconds": {"first start to a usable page": [80.0], "example click to top 5": [0.4]},
              "conditions": "Two training runs were paused."}
    text = "\n".join(page.section(report))
    assert "load average 1.5 at start, 1.2 at end. Two training runs were paused." in text
    assert "The machine was busy" not in text and "this run built" not in text
    assert "| first start to a usable page | 1 | 80.00 | 80.00 | ≤ 90 s: met |" in text
