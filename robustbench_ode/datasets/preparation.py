"""Put locally installed dataset files where torchvision looks for them (used by ``make data``).

``python -m robustbench_ode.datasets.preparation [--root DIR] [--source DIR]`` decompresses the
Fashion-MNIST IDX files of Debian's ``dataset-fashion-mnist`` package into
``<root>/FashionMNIST/raw/``: torchvision reads the uncompressed ``*-ubyte`` files and would
otherwise try to download them.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

from ..core.files import MAX_BLOB_BYTES, open_regular
from .images import FILES, data_root

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def prepare_fashion_mnist(root: Path, source: Path = DEBIAN_FASHION_MNIST) -> list[Path]:
    """Decompress ``source/*-ubyte.gz`` into ``root/FashionMNIST/raw``; return the files written.

    Files already there are left alone, so running it twice is cheap."""
    written = []
    for rel in FILES["fashion_mnist"][0]:
        dest = root / rel
        if dest.is_file():
            continue
        gz = source / (dest.name + ".gz")
        plain = source / dest.name
        if not gz.is_file() and not plain.is_file():
            raise FileNotFoundError(f"{gz} not found: install Debian's dataset-fashion-mnist "
                                    "(apt-get install dataset-fashion-mnist) or pass --source")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")  # never leave a truncated file under the real name
        raw = open_regular(gz if gz.is_file() else plain, MAX_BLOB_BYTES, "dataset file")
        with (gzip.GzipFile(fileobj=raw) if gz.is_file() else raw) as src, raw, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
        tmp.replace(dest)
        written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustbench_ode.datasets.preparation",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: $ROBUSTBENCH_ODE_DATA or ./data)")
    parser.add_argument("--source", type=Path, default=DEBIAN_FASHION_MNIST,
                        help="folder with the *-ubyte.gz files")
    args = parser.parse_args(argv)
    root = data_root(args.root)
    try:
        written = prepare_fashion_mnist(root, args.source)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"fashion_mnist: {len(written)} files written, all present under {root / 'FashionMNIST/raw'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
