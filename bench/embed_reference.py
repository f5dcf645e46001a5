"""The reference for `scripts/bench.sh embed`: sentence-transformers (PyTorch, CPU, one
thread) embedding the same sentences as the extension, from the same model folder.

Prints one JSON object: texts per second one at a time and batched, and the versions.
Usage: python embed_reference.py MODEL_DIR SENTENCES_FILE PASSES BATCH_SIZE
"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import sentence_transformers  # noqa: E402
from sentence_transformers import SentenceTransformer, models  # noqa: E402

torch.set_num_threads(1)
model_dir, sentences_file, passes, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(sentences_file, encoding="utf-8") as f:
    sentences = [line.rstrip("\n") for line in f if line.strip()]

try:
    model = SentenceTransformer(model_dir, device="cpu")
except Exception:  # a folder without sentence-transformers' own config: build it from its parts
    word = models.Transformer(model_dir, max_seq_length=256)
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pool, models.Normalize()], device="cpu")
model.max_seq_length = 256

model.encode(sentences[:8])  # warm up
t0 = time.perf_counter()
for _ in range(passes):
    for s in sentences:
        model.encode([s])
one = passes * len(sentences) / (time.perf_counter() - t0)
t0 = time.perf_counter()
for _ in range(passes):
    model.encode(sentences, batch_size=batch_size)
batched = passes * len(sentences) / (time.perf_counter() - t0)
print(json.dumps({
    "one_at_a_time_per_s": one,
    "batched_per_s": batched,
    "sentences": len(sentences),
    "passes": passes,
    "batch_size": batch_size,
    "torch": torch.__version__,
    "sentence_transformers": sentence_transformers.__version__,
    "threads": torch.get_num_threads(),
}))
