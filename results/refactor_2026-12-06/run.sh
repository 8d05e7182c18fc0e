#!/usr/bin/env bash
# old = 24ef424 (/work/wt-old), new = main; alternating, threads 2 then 1.
# Background helpers' niced processes (NI >= 10) are paused (SIGSTOP) during each run and
# resumed at the end, so that the benchmark has the machine to itself.
set -u
cd /work/main
OLD=/work/wt-old/target/release/examples/bench
NEW=/work/main/target/release/examples/bench
pause() { for p in $(ps -eo pid=,ni= | awk '$2>=10{print $1}'); do kill -STOP $p 2>/dev/null; done; }
resume() { for p in $(ps -eo pid=,ni= | awk '$2>=10{print $1}'); do kill -CONT $p 2>/dev/null; done; }
trap resume EXIT
for t in 2 1; do
  for r in old1 new1 new2 old2 new3 old3 old4 new4; do
    b=${r%?}; bin=$OLD; [ "$b" = new ] && bin=$NEW
    pause; sleep 2
    load=$(cut -d' ' -f1 /proc/loadavg)
    $bin train --threads $t | python3 -c "
import sys,json
for l in sys.stdin:
    d=json.loads(l); d.update(run='$r', build='$b', threads=$t, load_before=$load); print(json.dumps(d))"
  done
done
