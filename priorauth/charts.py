"""Server-side SVG bar charts (no JavaScript, no CDN): rows of (label, value) → drawable bars."""

from __future__ import annotations

LABEL_WIDTH = 190  # room for the label left of the bars
VALUE_WIDTH = 110  # room for the value text right of the longest bar


def bars(rows: list[dict], *, percent: bool = False, width: int = 280) -> dict:
    values = [r["value"] for r in rows if r.get("value") is not None]
    top = 1.0 if percent else (max(values) if values else 1) or 1
    out = []
    for i, r in enumerate(rows):
        v = r.get("value")
        length = 0 if v is None else round(width * (v / top))
        text = "—" if v is None else (f"{v * 100:.0f} %" if percent else f"{v:g}")
        if r.get("n") is not None:
            text += f" (n={r['n']})"
        label = str(r["label"])
        out.append({"label": label, "short": label if len(label) <= 26 else label[:25] + "…", "y": i * 26,
                    "length": length, "text": text, "text_x": length + 6})
    return {"rows": out, "height": max(len(out) * 26, 26), "width": LABEL_WIDTH + width + VALUE_WIDTH,
            "offset": LABEL_WIDTH}
