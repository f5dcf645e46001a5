"""Single-threaded sentence-transformers throughput, the baseline for
`examples/throughput.rs`.

    HF_HUB_OFFLINE=1 /opt/sponsorship-st/bin/python reference/throughput.py [ROUNDS]

Embeds the 48 sentences of reference/throughput_sentences.txt with
all-MiniLM-L6-v2 from the local folder (MINILM_MODEL_DIR), on the CPU with
torch.set_num_threads(1): one at a time via model.encode([t]), and in
batches via model.encode(list, batch_size=16 / 32). Each mode runs the whole
list ROUNDS times (default 7) after one warm-up pass and prints the median
and best rate, exactly like the Rust example.
"""

import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

MODEL_DIR = os.environ.get(
    "MINILM_MODEL_DIR", "/usr/local/share/sponsorship/all-MiniLM-L6-v2"
)
HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7


def report(name, texts, run):
    run(texts)
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
    rates.sort()
    print(
        f"{name:<22} median {statistics.median(rates):8.1f} texts/s   "
        f"best {rates[-1]:8.1f} texts/s",
        flush=True,
    )


def main():
    model = SentenceTransformer(MODEL_DIR, device="cpu")
    model.eval()
    with open(os.path.join(HERE, "throughput_sentences.txt"), encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f if line.strip()]
    tokens = sum(len(model.tokenizer(t)["input_ids"]) for t in texts)
    print(
        f"{len(texts)} texts, {tokens / len(texts):.1f} tokens/text on average, "
        f"{ROUNDS} rounds per mode; torch {torch.__version__}, "
        f"threads={torch.get_num_threads()}"
    )

    def one_at_a_time(ts):
        for t in ts:
            model.encode([t], show_progress_bar=False)

    with torch.inference_mode():
        report("torch one-at-a-time", texts, one_at_a_time)
        for bs in (16, 32):
            report(
                f"torch batch={bs}",
                texts,
                lambda ts, bs=bs: model.encode(ts, batch_size=bs, show_progress_bar=False),
            )


if __name__ == "__main__":
    main()
