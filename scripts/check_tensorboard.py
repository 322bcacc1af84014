#!/usr/bin/env python3
"""TensorBoard parity for rarlhf's event files, with PyPI's `tensorboard` as the oracle.

  check_tensorboard.py golden OUT.tfevents   write tests/fixtures/tensorboard/golden.tfevents with
                                             tensorboard's own EventFileWriter (a fixed set of scalars,
                                             a SessionLog START); tests/io/tensorboard_test.cpp reads
                                             it with rarlhf's reader.
  check_tensorboard.py run RUN_DIR [...]     load each rarlhf run folder with EventAccumulator (what
                                             `tensorboard --logdir` uses) and check that it holds
                                             exactly the numbers of RUN_DIR/metrics.jsonl: the same
                                             tags, steps and values (float32), a resumed run's stale
                                             points purged. Exit 1 on any difference.

Needs `pip install tensorboard` (a git-ignored venv, e.g. .venv-ref); not part of CI.
"""
import json
import math
import os
import struct
import sys


def write_golden(path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    out_dir = os.path.dirname(os.path.abspath(path))
    writer = EventFileWriter(out_dir, filename_suffix=".golden")

    def scalars(step, wall_time, values):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values])
        writer.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))

    scalars(0, 1700000000.25, [("loss/eval", 3.5)])
    scalars(1, 1700000001.5, [("loss/train", 2.75), ("lr", 1e-5), ("objective/kl", -0.125)])
    writer.add_event(event_pb2.Event(wall_time=1700000002.0, step=2,
                                     session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
    scalars(2, 1700000003.0, [("loss/train", 2.5), ("env/reward_mean", 123456.789)])
    scalars(40000000000, 1700000004.0, [("big/step", 7.0)])
    writer.close()
    written = sorted(f for f in os.listdir(out_dir) if f.startswith("events.out.tfevents.") and f.endswith(".golden"))
    os.replace(os.path.join(out_dir, written[-1]), path)


def check_run(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    key = None
    expect = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            key = key or ("iteration" if "iteration" in rec else "step")
            for tag, v in rec.items():
                if tag == key or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    continue
                expect.setdefault(tag, {})[rec[key]] = v
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    got = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}
    problems = []
    if set(got) != set(expect):
        problems.append(f"tags differ: only in TensorBoard {sorted(set(got) - set(expect))}, "
                        f"only in metrics.jsonl {sorted(set(expect) - set(got))}")
    for tag in sorted(set(got) & set(expect)):
        if sorted(got[tag]) != sorted(expect[tag]):
            problems.append(f"{tag}: steps {sorted(got[tag])} vs metrics.jsonl {sorted(expect[tag])}")
            continue
        for step, v in expect[tag].items():
            f32 = struct.unpack("f", struct.pack("f", v))[0]  # TensorBoard keeps simple_value as float32
            if got[tag][step] != f32:
                problems.append(f"{tag} step {step}: {got[tag][step]} vs {v}")
    points = sum(len(v) for v in expect.values())
    if problems:
        print(f"{run_dir}: {len(problems)} difference(s)")
        for p in problems[:20]:
            print("  " + p)
        return False
    print(f"{run_dir}: {len(expect)} tags, {points} points: TensorBoard == metrics.jsonl")
    return True


def main(argv):
    if len(argv) == 3 and argv[1] == "golden":
        write_golden(argv[2])
        return 0
    if len(argv) >= 3 and argv[1] == "run":
        return 0 if all([check_run(d) for d in argv[2:]]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
