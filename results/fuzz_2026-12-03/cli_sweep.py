#!/usr/bin/env python3
"""Hostile sweep of the `drsae` CLI binary: each case runs under /usr/bin/time -v with a
deadline; a pass is exit status 2, an `error:` line on stderr, no panic, no hang, and a max
RSS under 300 MB. Usage: cli_sweep.py BIN MODEL OUT.md (MODEL: a small drsae model file)."""
import os, struct, subprocess, sys, tempfile, re

BIN, MODEL, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
W = 784
tmp = tempfile.mkdtemp(prefix="drsae-sweep-")

def f(name, data):
    p = os.path.join(tmp, name)
    with open(p, "wb") as fh:
        fh.write(data)
    return p

def npy(descr, shape, payload=b"", fortran=False, magic=b"\x93NUMPY", ver=b"\x01\x00", hdr=None):
    if hdr is None:
        hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, "True" if fortran else "False", shape)
    h = hdr.encode()
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * (pad % 64) + b"\n"
    return magic + ver + struct.pack("<H", len(h)) + h + payload

d_empty = os.path.join(tmp, "emptydir"); os.mkdir(d_empty)
d_fake = os.path.join(tmp, "fakemnist"); os.mkdir(d_fake)
for n in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
    open(os.path.join(d_fake, n), "wb").write(b"\x00\x00\x08\x03" + struct.pack(">III", 0xFFFFFFFF, 28, 28) + b"\0" * 64)
fifo = os.path.join(tmp, "fifo.npy"); os.mkfifo(fifo)
zero = os.path.join(tmp, "zero.npy"); os.symlink("/dev/zero", zero)
png_magic = b"\x89PNG\r\n\x1a\n"
def png_chunk(t, d):
    import zlib
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
huge_png = png_magic + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16384, 16384, 8, 0, 0, 0, 0)) + png_chunk(b"IDAT", b"\x78\x9c" + b"\0" * 100) + png_chunk(b"IEND", b"")
def bomb_png(side):
    import zlib
    raw = (b"\0" + b"\0" * side) * side
    return png_magic + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")

files = {
    "bad_magic.npy": f("bad_magic.npy", b"\x93NUMPX\x01\x00" + b"\0" * 200),
    "huge_shape.npy": f("huge_shape.npy", npy("<f4", "(1099511627776, 784)", b"\0" * 64)),
    "overflow_shape.npy": f("overflow_shape.npy", npy("<f4", "(4611686018427387904, 4611686018427387904)", b"\0" * 64)),
    "huge_1d.npy": f("huge_1d.npy", npy("<f4", "(18446744073709551615,)", b"\0" * 64)),
    "neg_shape.npy": f("neg_shape.npy", npy("<f4", "(-1, 784)", b"\0" * 64)),
    "truncated.npy": f("truncated.npy", npy("<f4", "(10, 784)", b"\0" * 100)),
    "int32.npy": f("int32.npy", npy("<i4", "(1, 784)", b"\0" * 4 * W)),
    "bigendian.npy": f("bigendian.npy", npy(">f4", "(1, 784)", b"\0" * 4 * W)),
    "f16.npy": f("f16.npy", npy("<f2", "(1, 784)", b"\0" * 2 * W)),
    "object.npy": f("object.npy", npy("|O", "(1, 784)", b"\0" * 8 * W)),
    "fortran.npy": f("fortran.npy", npy("<f4", "(2, 784)", b"\0" * 8 * W, fortran=True)),
    "3d.npy": f("3d.npy", npy("<f4", "(1, 28, 28)", b"\0" * 4 * W)),
    "0d.npy": f("0d.npy", npy("<f4", "()", b"\0" * 4)),
    "wrong_width.npy": f("wrong_width.npy", npy("<f4", "(2, 10)", b"\0" * 80)),
    "nan_values.npy": f("nan_values.npy", npy("<f4", "(1, 784)", struct.pack("<f", float("nan")) * W)),
    "header_garbage.npy": f("header_garbage.npy", npy("", "", hdr="this is not a dict" + "x" * 40)),
    "header_len_beyond.npy": f("header_len_beyond.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr'"),
    "header_v2_huge.npy": f("header_v2_huge.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{"),
    "empty.npy": f("empty.npy", b""),
    "garbage.png": f("garbage.png", png_magic + os.urandom(200)),
    "garbage.jpg": f("garbage.jpg", b"\xff\xd8\xff\xe0" + os.urandom(200)),
    "text.jpg": f("text.jpg", b"hello, I am not a JPEG\n"),
    "empty.png": f("empty.png", b""),
    "huge_dims.png": f("huge_dims.png", huge_png),
    "bomb_8192.png": f("bomb_8192.png", bomb_png(8192)),
    "noext": f("noext", b"abc"),
    "empty_model.safetensors": f("empty_model.safetensors", b""),
    "garbage_model.safetensors": f("garbage_model.safetensors", os.urandom(300)),
    "huge_hdr_model.safetensors": f("huge_hdr_model.safetensors", struct.pack("<Q", 1 << 60) + b"{}"),
    "bad_magic.safetensors": f("bad_magic.safetensors", struct.pack("<Q", 16) + b"{\"x\": 1}        "),
}
F = files
out_npy = os.path.join(tmp, "codes.npy")
cases = []
def enc(label, inp):
    cases.append((label, ["encode", "--model", MODEL, inp, "-o", out_npy]))
for k in ["bad_magic.npy", "huge_shape.npy", "overflow_shape.npy", "huge_1d.npy", "neg_shape.npy", "truncated.npy",
          "int32.npy", "bigendian.npy", "f16.npy", "object.npy", "fortran.npy", "3d.npy", "0d.npy", "wrong_width.npy",
          "nan_values.npy", "header_garbage.npy", "header_len_beyond.npy", "header_v2_huge.npy", "empty.npy",
          "garbage.png", "garbage.jpg", "text.jpg", "empty.png", "huge_dims.png", "bomb_8192.png", "noext"]:
    enc("encode " + k, F[k])
enc("encode nonexistent path", os.path.join(tmp, "missing.npy"))
enc("encode empty directory", d_empty)
enc("encode forged-IDX directory", d_fake)
enc("encode FIFO .npy", fifo)
enc("encode symlink to /dev/zero", zero)
cases.append(("predict huge_shape.npy", ["predict", "--model", MODEL, F["huge_shape.npy"]]))
cases.append(("predict fortran.npy", ["predict", "--model", MODEL, F["fortran.npy"]]))
cases.append(("predict garbage.png", ["predict", "--model", MODEL, F["garbage.png"]]))
ok_in = f("ok.npy", npy("<f4", "(1, 784)", b"\0" * 4 * W))
for k in ["empty_model.safetensors", "garbage_model.safetensors", "huge_hdr_model.safetensors", "bad_magic.safetensors"]:
    cases.append(("encode --model " + k, ["encode", "--model", F[k], ok_in, "-o", out_npy]))
    cases.append(("inspect " + k, ["inspect", F[k]]))
cases.append(("encode --model directory", ["encode", "--model", d_empty, ok_in, "-o", out_npy]))
cases.append(("encode --model nonexistent", ["encode", "--model", os.path.join(tmp, "nope"), ok_in, "-o", out_npy]))
cases.append(("encode --model /dev/zero", ["encode", "--model", "/dev/zero", ok_in, "-o", out_npy]))
cases.append(("encode -o a directory", ["encode", "--model", MODEL, ok_in, "-o", d_empty]))
cases.append(("encode -o in a missing directory", ["encode", "--model", MODEL, ok_in, "-o", os.path.join(tmp, "no", "such", "x.npy")]))
cases.append(("inspect directory", ["inspect", d_empty]))
cases.append(("inspect nonexistent", ["inspect", os.path.join(tmp, "nope")]))
cases.append(("inspect FIFO", ["inspect", fifo]))
# train drsae: absurd flags (each alone, on the bundled sample), bad data
for flag, vals in [("--hidden", ["0", "-1", "1e30", "NaN"]), ("--steps", ["0", "-1", "1e30"]), ("--batch", ["0", "-1", "1e30"]),
                   ("--lr", ["0", "-1", "1e30", "NaN", "inf"]), ("--lambda", ["-1", "1e30", "NaN"]),
                   ("--reconstruction", ["-1", "NaN"]), ("--classification", ["NaN"]),
                   ("--average", ["0", "-1", "1e30", "NaN"]), ("--e-max", ["0", "-1", "1e30", "NaN"]),
                   ("--time-budget", ["0", "-1", "1e30", "NaN"]), ("--patience", ["0", "-1"]),
                   ("--val", ["0", "-1", "1e30", "1000000000"]), ("--epochs-sup", ["-1", "1e30"]),
                   ("--epochs-unsup", ["-1", "1e30"]), ("--seed", ["-1", "1e30"]), ("--optimizer", ["magic"]),
                   ("--schedule", ["magic"]), ("--threads", ["0", "-1", "1e30"])]:
    for v in vals:
        cases.append((f"train drsae {flag} {v}", ["train", "drsae", f"{flag}={v}", "--out", os.path.join(tmp, "absent_out")]))
for label, d in [("nonexistent", os.path.join(tmp, "nope")), ("empty directory", d_empty), ("forged IDX", d_fake), ("a file", F["noext"])]:
    cases.append((f"train drsae --data {label}", ["train", "drsae", "--data", d, "--out", os.path.join(tmp, "absent_out")]))
# train sae
for k in ["bad_magic.npy", "huge_shape.npy", "overflow_shape.npy", "truncated.npy", "int32.npy", "bigendian.npy",
          "fortran.npy", "3d.npy", "empty.npy", "header_v2_huge.npy", "nan_values.npy", "garbage_model.safetensors",
          "huge_hdr_model.safetensors"]:
    cases.append((f"train sae {k}", ["train", "sae", F[k], "--out", os.path.join(tmp, "absent_out")]))
cases.append(("train sae FIFO", ["train", "sae", fifo]))
cases.append(("train sae /dev/zero symlink", ["train", "sae", zero]))
cases.append(("train sae directory", ["train", "sae", d_empty]))
cases.append(("train sae nonexistent", ["train", "sae", os.path.join(tmp, "nope.npy")]))
good = f("good.npy", npy("<f4", "(64, 16)", struct.pack("<f", 0.5) * 64 * 16))
for flag, vals in [("--k", ["0", "-1", "1e30", "100000"]), ("--d-sae", ["0", "1e30", "16777216"]), ("--batch", ["0", "1e30"]),
                   ("--samples", ["0", "-1", "1e30", "18446744073709551615"]), ("--lr", ["0", "-1", "1e30", "NaN"]),
                   ("--sparsity", ["-1", "NaN", "1e30"]), ("--aux-coefficient", ["NaN", "-1"]), ("--k-aux", ["1000000"]),
                   ("--dead-after", ["0"]), ("--prefixes", ["5,3", "0"]), ("--chunk-rows", ["0"]), ("--buffer-chunks", ["0", "100000"]),
                   ("--kind", ["magic"]), ("--lr-warmup", ["18446744073709551615"])]:
    for v in vals:
        cases.append((f"train sae {flag} {v}", ["train", "sae", good, f"{flag}={v}", "--out", os.path.join(tmp, "absent_out")]))

rows = []
for label, args in cases:
    cmd = ["/usr/bin/time", "-v", "timeout", "8", BIN, "--quiet"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    err = p.stderr
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    rss = int(m.group(1)) / 1024 if m else -1
    body = err.split("\tCommand being timed")[0]
    lines = [l for l in body.splitlines() if l.strip()]
    first_err = next((l for l in lines if l.startswith("error:")), "")
    code = p.returncode
    panicked = "panicked" in body
    hang = code == 124
    absent = not os.path.exists(os.path.join(tmp, "absent_out"))
    clean = code == 2 and first_err and not panicked and rss < 300 and absent
    if code == 0:
        verdict = "accepted"
    elif clean:
        verdict = "clean"
    elif hang:
        verdict = "HANG or long run (killed at 8 s)"
    elif panicked:
        verdict = "PANIC"
    else:
        verdict = "NOT CLEAN"
    if not absent:
        verdict += ", --out created"
        import shutil; shutil.rmtree(os.path.join(tmp, "absent_out"), ignore_errors=True)
    if rss >= 300:
        verdict += f", {rss:.0f} MB"
    msg = (first_err or (lines[-1] if lines else "")).replace("|", "\\|")
    if len(msg) > 150:
        msg = msg[:147] + "..."
    rows.append((label, code, rss, verdict, msg))
    print(f"{verdict:10} {code:4} {rss:7.1f} MB  {label}: {msg}", flush=True)

n = len(rows)
clean = sum(r[3] == "clean" for r in rows)
with open(OUT, "w") as o:
    o.write(f"# Hostile sweep of the `drsae` CLI\n\n{n} inputs, {clean} clean errors (exit 2, an `error:` line, no panic, under 8 s, max RSS < 300 MB, `--out` not created); the rest are listed as they came out.\n\n")
    o.write("| case | exit | max RSS MB | verdict | first `error:` line |\n| --- | --- | --- | --- | --- |\n")
    for label, code, rss, verdict, msg in rows:
        o.write(f"| {label} | {code} | {rss:.1f} | {verdict} | {msg} |\n")
print(f"{n} cases, {clean} clean")
