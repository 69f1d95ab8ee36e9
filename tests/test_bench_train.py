"""benchmarks.bench_train: the report section is replaced in place; one tiny row is measured."""

from benchmarks import bench_train


def test_the_training_section_replaces_only_itself(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nother rows\n")
    row = {"model": "m", "threads": 1, "fp32_images_per_s": 10.0, "bf16_images_per_s": 25.0, "speedup": 2.5}
    bench_train.write(bench_train.markdown([row], "cmd", "0.1 0.2 0.3"), report)
    first = report.read_text()
    assert first.startswith("# Benchmarks\n\nother rows") and "| m | 10.0 | 25.0 | 2.50x |" in first
    bench_train.write(bench_train.markdown([{**row, "speedup": 3.0}], "cmd", "0.1"), report)
    second = report.read_text()
    assert second.count(bench_train.START) == 1 and "3.00x" in second and "2.50x" not in second


def test_a_tagunet_training_step_runs_in_both_precisions():
    for precision in ("fp32", "bf16"):
        step, batch = bench_train.tagunet_step(precision, batch=2, size=32)
        step()
        assert batch == 2
