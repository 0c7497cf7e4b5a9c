"""Builds the leaderboard from the results folder's *.json: for every case, poisonkit's
throughput against the best peer in the same run, as a markdown table, JSON and a plot."""
from __future__ import annotations

from poisonkit._io import write_json, write_text

from .common import format_rate, results_dir, throughput_results


def collect() -> list[dict]:
    entries = []
    for payload in throughput_results(exclude={"line_rate"}):
        cases: dict[str, list[dict]] = {}
        for row in payload.get("rows", []):
            cases.setdefault(row["case"], []).append(row)
        for case, rows in cases.items():
            ours = [r for r in rows if r["impl"].startswith("poisonkit")]
            peers = [r for r in rows if not r["impl"].startswith("poisonkit")]
            if not ours or not peers:
                continue
            best_ours = max(ours, key=lambda r: r["images_per_s"])
            best_peer = max(peers, key=lambda r: r["images_per_s"])
            entries.append({
                "benchmark": payload["benchmark"], "case": case,
                "device": payload["machine"].get("gpu") or payload["machine"]["cpu"],
                "poisonkit": best_ours["impl"], "poisonkit_images_per_s": best_ours["images_per_s"],
                "best_peer": best_peer["impl"], "best_peer_images_per_s": best_peer["images_per_s"],
                "ratio": round(best_ours["images_per_s"] / best_peer["images_per_s"], 2),
            })
    return entries


def write(entries: list[dict]) -> None:
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "leaderboard.json", entries)
    lines = ["# poisonkit leaderboard", "",
             "Ratio = poisonkit images/s over the best peer's in the same run (> 1: faster).", "",
             "| benchmark | case | device | poisonkit images/s | best peer | peer images/s | ratio |",
             "|---|---|---|---:|---|---:|---:|"]
    for e in entries:
        lines.append(f"| {e['benchmark']} | {e['case']} | {e['device']} | "
                     f"{format_rate(e['poisonkit_images_per_s'])} | {e['best_peer']} | "
                     f"{format_rate(e['best_peer_images_per_s'])} | {e['ratio']:,.2f} |")
    write_text(out / "leaderboard.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(entries)


def plot(entries: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not entries:
        return
    labels = [f"{e['benchmark']}: {e['case']}" for e in entries]
    ratios = [e["ratio"] for e in entries]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(entries) + 1.2))
    ax.barh(labels, ratios, color=["tab:green" if r >= 1 else "tab:red" for r in ratios])
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("poisonkit / best peer (images/s, log scale)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(results_dir() / "leaderboard.png", dpi=110)
    plt.close(fig)


def main() -> None:
    write(collect())


if __name__ == "__main__":
    main()
