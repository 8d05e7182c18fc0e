"""Writes data/mnist-sample/: the first 10,000 training and all 10,000 test MNIST images.

Usage: python3 scripts/make_sample.py ../shared/data/mnist data/mnist-sample
"""
import gzip, struct, sys, os

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for name, keep in [("train-images-idx3-ubyte", 10000), ("train-labels-idx1-ubyte", 10000),
                   ("t10k-images-idx3-ubyte", 10000), ("t10k-labels-idx1-ubyte", 10000)]:
    raw = gzip.open(os.path.join(src, name + ".gz")).read()
    ndims = raw[3]
    dims = list(struct.unpack(">" + "I" * ndims, raw[4:4 + 4 * ndims]))
    per = 1
    for d in dims[1:]:
        per *= d
    dims[0] = keep
    out = raw[:4] + struct.pack(">" + "I" * ndims, *dims) + raw[4 + 4 * ndims: 4 + 4 * ndims + keep * per]
    with gzip.GzipFile(os.path.join(dst, name + ".gz"), "wb", mtime=0) as f:
        f.write(out)
