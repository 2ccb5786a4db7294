"""Run the everyday mistakes of a new user through the real command line and tabulate
what each gives: exit code and the last line on stderr (or what was written).

    python tools/user_errors.py --out docs/user_errors.md

Each case runs ``python -m heatmaploc ...`` in a fresh temporary folder with real files
(the shipped model, one pass, on small simulated fields; training cases on
``configs/tiny.yaml``).  Large images are measured by ``tools/large_image.py`` and
Ctrl-C resumption by the tests (``tests/test_training.py``).
"""
from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "tiny.yaml")


def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "heatmaploc", *args], capture_output=True, text=True, cwd=cwd)
    err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return proc.returncode, (err[-1] if err else ""), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="Markdown file to write")
    args = parser.parse_args()

    import numpy as np

    from heatmaploc.data.io import read_points_csv, write_image
    from heatmaploc.simulate import get_preset, simulate_image

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = get_preset("default", height=64, width=64, renderings=("colormap",))
        good = [simulate_image(cfg, 5, i).image for i in range(3)]
        scans = tmp / "scans"
        write_image(scans / "a, left.png", good[0])
        write_image(scans / "b.png", good[1])
        (scans / "c.png").write_bytes(b"not a png")
        import cv2

        cv2.imwrite(str(scans / "d.jpg"), good[2][:, :, ::-1])
        (scans / "notes.txt").write_text("lab notes")
        write_image(tmp / "run1" / "x.png", good[0])
        write_image(tmp / "run2" / "x.png", good[1])
        quick = ["--tta", "none"]

        code, err, out = cli("predict", str(scans), *quick, "--out", "p.csv", cwd=tmp)
        names = sorted(read_points_csv(tmp / "p.csv").points)
        summary = [ln for ln in out.splitlines() if " images" in ln and "sources" in ln]
        rows.append(("a folder with a comma in a name, a corrupt PNG, a JPEG and a .txt; `--out p.csv`", code,
                     f"{err} (stdout: {summary[0] if summary else ''}; images with points in the CSV, read back: "
                     f"{names})"))
        code, err, _ = cli("predict", str(scans), *quick, "--out", "p.csv", "--strict", cwd=tmp)
        rows.append(("the same with `--strict`", code, err))
        code, err, _ = cli("predict", "run1", "run2", *quick, "--out", "q.csv", "--overlay", "ov", cwd=tmp)
        rows.append(("`run1/x.png` and `run2/x.png`, `--out`, `--overlay`", code,
                     f"images with points in the CSV {sorted(read_points_csv(tmp / 'q.csv').points)}; overlays "
                     f"{sorted(str(p.relative_to(tmp / 'ov')) for p in (tmp / 'ov').rglob('*.png'))}"))
        locked = tmp / "locked"
        locked.mkdir()
        os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
        target = locked if not os.access(locked, os.W_OK) else Path("/sys")  # root ignores the mode bits
        code, err, _ = cli("predict", "run1", "--out", str(target / "p.csv"), cwd=tmp)
        rows.append((f"`--out` into a read-only folder (`{target.name if target == locked else target}`)", code, err))
        code, err, _ = cli("predict", "run1", "--out", "run2", cwd=tmp)
        rows.append(("`--out` naming a folder", code, err))
        for value in ("-1", "1.5", "nan"):
            code, err, _ = cli("predict", "run1", "--threshold", value, cwd=tmp)
            rows.append((f"`--threshold {value}`", code, err))
        for override in ("train.steps=abc", "train.lr=fast", "train.steps=2.5", "train.steps=-5", "train.lr=-1"):
            code, err, _ = cli("train", "--config", TINY, "--out", "r0", "--set", override, cwd=tmp)
            rows.append((f"`train --set {override}`", code, err))
        sets = ["--set", "train.steps=4", "--set", "train.steps_per_epoch=2"]
        cli("train", "--config", TINY, "--out", "run", "--quiet", *sets, cwd=tmp)
        code, err, _ = cli("train", "--config", TINY, "--out", "run", "--quiet", cwd=tmp)
        rows.append(("`train --out` a folder that holds a run, without `--resume`", code, err))
        code, err, out = cli("train", "--out", "run", "--resume", "--quiet", "--set", "train.steps=6", cwd=tmp)
        rows.append(("`train --out run --resume` without `--config` (the run's config.yaml is read)", code,
                     out.strip().splitlines()[0] if out.strip() else err))
        code, err, _ = cli("train", "--out", "empty", "--resume", cwd=tmp)
        rows.append(("`train --resume` where no run was saved", code, err))
        np.save(tmp / "nan.npy", np.full((8, 8), np.nan, np.float32))
        code, err, _ = cli("predict", "nan.npy", cwd=tmp)
        rows.append(("an all-NaN `.npy`", code, err))
    lines = ["# What a user's mistakes give", "",
             "`python tools/user_errors.py --out docs/user_errors.md` (real files, real subprocesses).", "",
             "| case | exit | stderr (last line) or result |", "|---|---|---|"]
    lines += [f"| {case} | {code} | {text.replace('|', '/')} |" for case, code, text in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
