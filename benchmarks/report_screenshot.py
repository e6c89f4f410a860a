"""The rater report as a reader sees it: write a report with ``accord report`` and screenshot it in headless Chromium.

Without ``--input`` the judgments are synthetic (:func:`accord.datasets.make_synthetic`: reliable raters, random
spammers, adversarial and position-biased raters, with the true label as ``gold``), so the report's gold agreement,
contested pairs and flagged raters can be checked against known truth; with ``--input`` (and ``--gold``) it is the
user's own table. The page is opened from disk (``file://``) by Debian's ``chromium`` (``apt-get install chromium``)
with networking and every background service off, in a fresh profile folder, and saved as a PNG of
``--window`` pixels (make it tall enough for the whole page).

    python benchmarks/report_screenshot.py --png /tmp/report.png
    python benchmarks/report_screenshot.py --input answers.csv --gold truth.csv --methods dawid-skene,majority
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)


def synthetic_input(folder: Path, n_pairs: int, n_annotators: int, seed: int) -> tuple[Path, Path]:
    """A synthetic judgments file and its gold file (the true label of every pair)."""
    from accord.datasets import make_synthetic

    data = make_synthetic(n_pairs=n_pairs, n_annotators=n_annotators, judgments_per_pair=3, seed=seed)
    judgments = data.judgments.drop(columns=["gold", "annotator_type"])
    judgments_path, gold_path = folder / "judgments.csv", folder / "gold.csv"
    judgments.to_csv(judgments_path, index=False)
    data.true_label.rename("gold").reset_index().to_csv(gold_path, index=False)
    return judgments_path, gold_path


def screenshot(page: Path, png: Path, window: str, browser: str) -> None:
    """Open ``page`` in headless Chromium and save what it shows as ``png``."""
    with tempfile.TemporaryDirectory(prefix="accord-chromium-") as profile:
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                   f"--window-size={window.replace('x', ',')}", page.resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not png.exists():
        raise SystemExit(f"chromium failed ({result.returncode}): {result.stderr.strip()[-500:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="judgments file (default: synthetic judgments with gold)")
    parser.add_argument("--gold", help="gold file for --input")
    parser.add_argument("--methods", default="dawid-skene,mace,vote-fraction,majority")
    parser.add_argument("--n-pairs", type=int, default=200, help="synthetic pairs (without --input)")
    parser.add_argument("--n-annotators", type=int, default=40, help="synthetic annotators (without --input)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", help="where the report goes (default: a temporary folder)")
    parser.add_argument("--png", default="report.png", help="the screenshot")
    parser.add_argument("--window", default="1280x9000", help="browser window, WIDTHxHEIGHT pixels")
    args = parser.parse_args()

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install chromium)")
    from accord.cli import main as accord_main

    with tempfile.TemporaryDirectory(prefix="accord-report-") as scratch:
        folder = Path(args.output_dir) if args.output_dir else Path(scratch) / "report"
        if args.input:
            judgments, gold = Path(args.input), (Path(args.gold) if args.gold else None)
        else:
            judgments, gold = synthetic_input(Path(scratch), args.n_pairs, args.n_annotators, args.seed)
        command = ["report", "--input", str(judgments), "--methods", args.methods, "--output-dir", str(folder),
                   "--seed", str(args.seed), "--quiet"] + (["--gold", str(gold)] if gold else [])
        status = accord_main(command)
        if status != 0:
            return status
        png = Path(args.png)
        screenshot(folder / "report.html", png, args.window, browser)
    print(f"wrote {png} ({png.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
