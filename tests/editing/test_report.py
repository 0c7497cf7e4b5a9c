"""Report: the JPEG curve's order, the quality at which the protection is undone, the
table, and the files written."""
import json

from poisonkit.editing.report import jpeg_curve, markdown_table, undone_at, write_report


def _results(remaining_by_quality):
    base = {"dist_target": 1.0, "dist_target_clean": 2.0, "recon_psnr": 20.0,
            "recon_psnr_clean": 25.0}
    results = {"none": dict(base, remaining=1.0)}
    for q, r in remaining_by_quality.items():
        results[f"jpeg:{q}"] = dict(base, remaining=r)
    results["sharpen+lowpass"] = dict(base, remaining=0.1)
    return results


def test_undone_at_is_the_highest_quality_below_threshold():
    results = _results({10: 0.05, 95: 0.9, 50: 0.3, 75: 0.6})
    assert [q for q, _ in jpeg_curve(results)] == [95, 75, 50, 10]
    assert undone_at(results) == 50
    assert undone_at(results, threshold=0.95) == 95
    assert undone_at(_results({95: 0.9, 10: 0.8})) is None


def test_table_and_files(tmp_path):
    results = _results({90: 0.8, 30: 0.2})
    table = markdown_table(results)
    assert table.splitlines()[0].startswith("| purification | remaining |")
    assert "| jpeg:30 | 0.20 |" in table
    paths = write_report(results, tmp_path, {"title": "t", "images": 3})
    saved = json.loads(paths["json"].read_text())
    assert saved["undone_at_jpeg_quality"] == 30 and saved["images"] == 3
    assert "from JPEG quality 30 down" in paths["markdown"].read_text()
    assert paths["curves"].stat().st_size > 0
