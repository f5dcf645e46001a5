"""Produce reference embeddings for the `minilm` crate's tests.

Run (offline, from anywhere):

    HF_HUB_OFFLINE=1 /opt/sponsorship-st/bin/python reference/make_reference.py

What it does
------------
* Loads sentence-transformers all-MiniLM-L6-v2 from the SAME local folder the
  Rust crate reads (override with MINILM_MODEL_DIR), on the CPU, with no hub
  access. The folder carries modules.json, sentence_bert_config.json and
  1_Pooling/config.json, so `SentenceTransformer(folder)` builds the standard
  Transformer -> Pooling(mean) -> Normalize pipeline by itself; the missing
  2_Normalize/ folder is fine because Normalize has no parameters. The script
  asserts that pipeline shape so a silently different model is caught.
* Embeds the fixed list of texts below (marketplace sentences, unicode, edge
  cases, two texts longer than 256 tokens) one at a time, so no padding is
  involved in the reference itself.
* Writes reference/embedding_reference.json next to this file:
  {"model_dir", "max_seq_length", "versions": {...},
   "items": [{"text", "input_ids", "untruncated_tokens", "vector"}]}
  `input_ids` are the ids the model actually saw (truncated to 256 including
  [CLS]/[SEP]); `untruncated_tokens` is the length before truncation.

Deterministic: fixed inputs, CPU, torch in eval mode with one thread, floats
written as the shortest repr of each float32 value.
"""

import json
import os
import platform
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

MODEL_DIR = os.environ.get(
    "MINILM_MODEL_DIR", "/usr/local/share/sponsorship/all-MiniLM-L6-v2"
)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "embedding_reference.json")

LONG_1 = " ".join(
    [
        "The Northern Lights Music Festival in Tromsø is looking for a lead sponsor "
        "for its 2026 edition, offering naming rights on the main stage, branded "
        "hospitality lounges, and a year-round content partnership with its "
        "streaming channel, which reached 4.2 million viewers last season.",
        "Past partners include a regional airline, a craft brewery, an outdoor "
        "apparel brand and a renewable-energy utility; each received on-site "
        "activation space, logo placement on wristbands and tickets, and "
        "co-branded social campaigns measured against agreed impression targets.",
        "The organisers expect 38,000 attendees over three days, with 61 percent "
        "aged between 18 and 34, and they are open to category-exclusive deals "
        "for beverages, telecoms, fintech and sustainable mobility.",
        "Sponsorship packages start at EUR 25,000 for a community tier and rise to "
        "EUR 400,000 for the title partnership, which also includes a keynote slot "
        "at the industry conference held the day before the festival opens.",
        "Applicants should describe their brand values, activation ideas, target "
        "audience, preferred metrics, and any restrictions on alcohol, gambling or "
        "tobacco adjacency, so that the marketplace can match them with organisers "
        "whose audiences and values fit, and propose a draft agreement within two "
        "weeks of the first conversation.",
        "Volunteers, local businesses, and municipal partners are also invited to "
        "join the programme, and the festival publishes an annual impact report "
        "covering attendance, carbon footprint, accessibility measures, and the "
        "return on investment reported by each sponsor.",
    ]
)

LONG_2 = (
    "Conference sponsorship checklist: "
    + "; ".join(
        f"item {i}: confirm booth size, power, Wi-Fi, lead-scanning apps, "
        f"speaker slot {i % 7}, badge branding and catering for day {i % 3 + 1}"
        for i in range(1, 31)
    )
    + "."
)

TEXTS = [
    # Sponsorship / event marketplace sentences.
    "Red Bull is sponsoring the Berlin Marathon this September.",
    "We are looking for a beverage brand to sponsor our jazz festival in Montreal.",
    "Tech conference in Lisbon seeks cloud and developer-tools sponsors for 2025.",
    "Local bakery offers free pastries in exchange for logo placement at the 5K charity run.",
    "Nike and Adidas both bid for the kit deal of the Nairobi youth football league.",
    "The Austin food truck rally needs a title sponsor; 12,000 visitors expected.",
    "Which brands sponsor esports tournaments in Seoul and Tokyo?",
    "Sustainability-focused sponsors preferred for the Copenhagen design week.",
    "Gold package: main-stage banner, 10 VIP passes, and a keynote mention.",
    # Unicode: accents, CJK, emoji, right-to-left scripts.
    "Café crème et crêpes au Festival d'été de Québec — très réussi!",
    "Zürich, São Paulo, Kraków, Reykjavík und Düsseldorf suchen Sponsoren.",
    "東京で開催される音楽フェスティバルのスポンサーを募集しています。",
    "上海国际电影节正在寻找赞助商。",
    "서울 마라톤 대회 후원사를 찾습니다.",
    "🎉🎶 Summer fest is on! 🍺🌞 Sponsors welcome 🙌",
    "مهرجان دبي للتسوق يبحث عن رعاة جدد لهذا العام",
    "פסטיבל הג'אז באילת מחפש נותני חסות",
    "Привет! Фестиваль в Санкт-Петербурге ищет спонсоров.",
    # Edge cases.
    "",
    "sponsorship",
    "?!...;:--()[]{}",
    "ThIs Is MiXeD cAsE tExT wItH BRANDS like CocaCola and PEPSI.",
    "1234567890 3.14159 2025-06-01 €5,000 $1,000,000 42%",
    "   leading and trailing whitespace   ",
    "line one\nline two\ttabbed",
    "a",
    # Longer than 256 tokens: exercises truncation.
    LONG_1,
    LONG_2,
]


def main() -> None:
    torch.set_num_threads(1)
    model = SentenceTransformer(MODEL_DIR, device="cpu")
    model.eval()

    modules = [type(m).__name__ for m in model]
    assert modules == ["Transformer", "Pooling", "Normalize"], modules
    assert model.max_seq_length == 256, model.max_seq_length
    assert model[1].get_config_dict()["pooling_mode"] == "mean", model[1].get_config_dict()

    tok = model.tokenizer
    items = []
    with torch.inference_mode():
        for text in TEXTS:
            vec = model.encode([text], convert_to_numpy=True, batch_size=1)[0]
            full = tok(text, truncation=False)["input_ids"]
            seen = tok(text, truncation=True, max_length=model.max_seq_length)[
                "input_ids"
            ]
            assert vec.shape == (384,) and vec.dtype == numpy.float32
            items.append(
                {
                    "text": text,
                    "input_ids": [int(i) for i in seen],
                    "untruncated_tokens": len(full),
                    "vector": [float(str(x)) for x in vec],
                }
            )

    long_items = [it for it in items if it["untruncated_tokens"] > 256]
    assert len(long_items) >= 2, [it["untruncated_tokens"] for it in items]
    assert len(items) >= 24

    out = {
        "model_dir": MODEL_DIR,
        "max_seq_length": model.max_seq_length,
        "versions": {
            "python": platform.python_version(),
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": numpy.__version__,
        },
        "items": items,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(
        f"wrote {len(items)} vectors to {OUT} "
        f"({len(long_items)} longer than 256 tokens: "
        f"{[it['untruncated_tokens'] for it in long_items]})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
