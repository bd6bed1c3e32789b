"""Drafting the medical-necessity letter, the submission's fields and the appeal. Pluggable:

* ``TemplateDrafter`` (default) — deterministic text built only from gathered evidence; every
  statement carries the ids of the evidence items it rests on, written as ``[id]`` in the letter;
* ``LanguageModelDrafter`` (optional, off by default; settings RXHUB["PA_DRAFTER"]) — asks an
  OpenAI-compatible ``/chat/completions`` endpoint for the narrative and keeps only sentences
  that cite known evidence ids; anything else is dropped. Its output is a draft for a person.

Pure apart from the language-model HTTP call: plain data in, a ``Draft`` out.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

CITATION = re.compile(r"\[([a-z]+:[A-Za-z0-9_.-]+)\]")


@dataclass
class Statement:
    text: str
    sources: list[str]

    def as_dict(self) -> dict:
        return {"text": self.text, "sources": list(self.sources)}


@dataclass
class Draft:
    letter: str
    fields: dict[str, str]
    statements: list[Statement]
    missing: list[str]
    drafter: str = "template"
    field_sources: dict[str, str] = field(default_factory=dict)


def _by_kind(evidence: list[dict], kind: str) -> list[dict]:
    return [e for e in evidence if e.get("kind") == kind]


def _cite(ids) -> str:
    return " ".join(f"[{i}]" for i in ids if i)


def statements_for(evidence: list[dict], criteria: dict) -> list[Statement]:
    """One statement per relevant evidence item; criteria met are restated with their evidence."""
    out: list[Statement] = []
    for e in _by_kind(evidence, "indication"):
        out.append(Statement(f"The prescription is for {e['text']}.", [e["id"]]))
    for e in _by_kind(evidence, "diagnosis"):
        out.append(Statement(f"The patient has a documented diagnosis of {e['text']}.", [e["id"]]))
    for e in _by_kind(evidence, "therapy"):
        out.append(Statement(f"Prior therapy: {e['text']}.", [e["id"]]))
    for e in _by_kind(evidence, "lab"):
        out.append(Statement(f"Recent result: {e['text']}.", [e["id"]]))
    known = {e["id"] for e in evidence}
    for item in criteria.get("items", []):
        ids = [i for i in item.get("evidence", []) if i in known]
        if item.get("status") == "met" and ids:
            out.append(Statement(f"Criterion met — {item['name']}: {item['detail']}.", ids))
    return out


def _missing(criteria: dict) -> list[str]:
    return [
        f"{i['name']}: {i['detail']}" + (f" — {i['ask']}" if i.get("ask") else "")
        for i in criteria.get("items", [])
        if i.get("status") != "met"
    ]


def _fields(facts: dict, evidence: list[dict]) -> tuple[dict[str, str], dict[str, str]]:
    values: dict[str, str] = {}
    sources: dict[str, str] = {}

    def put(name: str, value, source: str) -> None:
        if value not in (None, ""):
            values[name] = str(value)
            sources[name] = source

    for e in evidence:
        data = e.get("data", {})
        if e["kind"] == "patient":
            put("patient_name", data.get("name"), e["id"])
            put("birth_date", data.get("birth_date"), e["id"])
            put("gender", data.get("sex"), e["id"])
        elif e["kind"] == "coverage":
            put("member_id", data.get("member_id"), e["id"])
            put("bin", data.get("bin"), e["id"])
            put("pcn", data.get("pcn"), e["id"])
            put("group", data.get("group"), e["id"])
            put("payer", data.get("payer_name"), e["id"])
        elif e["kind"] == "prescriber":
            put("prescriber_name", data.get("name"), e["id"])
            put("prescriber_npi", data.get("npi"), e["id"])
        elif e["kind"] == "medication":
            put("drug", data.get("description"), e["id"])
            put("ndc", data.get("ndc"), e["id"])
            put("quantity", data.get("quantity"), e["id"])
            put("days_supply", data.get("days_supply"), e["id"])
            put("sig", data.get("sig"), e["id"])
    dx = _by_kind(evidence, "diagnosis") + _by_kind(evidence, "indication")
    codes = []
    for e in dx:
        code = e.get("data", {}).get("code")
        if code and code not in codes:
            codes.append(code)
    if codes:
        values["diagnosis_codes"] = ", ".join(codes)
        sources["diagnosis_codes"] = ", ".join(e["id"] for e in dx)
    therapies = _by_kind(evidence, "therapy")
    if therapies:
        values["prior_therapies"] = "; ".join(e["text"] for e in therapies)
        sources["prior_therapies"] = ", ".join(e["id"] for e in therapies)
    values["urgency"] = "expedited" if facts.get("expedited") else "standard"
    return values, sources


def _letter(facts: dict, body: list[str], missing: list[str]) -> str:
    lines = [
        f"Re: Prior authorization request — {facts.get('drug', '')} for {facts.get('patient_name', '')}"
        f" (DOB {facts.get('birth_date', '')}, member ID {facts.get('member_id', '') or 'unknown'})",
        "",
        f"To the {facts.get('payer_name') or 'plan'} prior authorization review team:",
        "",
        f"On behalf of {facts.get('prescriber_name', 'the prescriber')}, we request coverage of "
        f"{facts.get('drug', '')} ({facts.get('quantity', '')} for {facts.get('days_supply', '')} days). "
        "The facts supporting medical necessity, each with the record it comes from:",
        "",
        *body,
    ]
    if missing:
        lines += ["", "Still to be provided (requested from the prescriber):", *[f"- {m}" for m in missing]]
    lines += ["", "Sincerely,", facts.get("pharmacy_name") or "The pharmacy team"]
    return "\n".join(lines)


class TemplateDrafter:
    uses_network = False  # local: safe to run inside the case's transaction
    name = "template"

    def draft(self, *, facts: dict, evidence: list[dict], criteria: dict) -> Draft:
        statements = statements_for(evidence, criteria)
        body = [f"- {s.text} {_cite(s.sources)}" for s in statements]
        missing = _missing(criteria)
        fields, sources = _fields(facts, evidence)
        return Draft(
            letter=_letter(facts, body, missing),
            fields=fields,
            statements=statements,
            missing=missing,
            drafter=self.name,
            field_sources=sources,
        )

    def appeal(self, *, facts: dict, evidence: list[dict], criteria: dict, denial_reasons: list[str]) -> str:
        statements = statements_for(evidence, criteria)
        lines = [
            f"Re: Appeal of prior authorization denial — {facts.get('drug', '')} for {facts.get('patient_name', '')}"
            f" (payer case {facts.get('payer_case_id') or 'n/a'})",
            "",
            "We ask you to reconsider the denial. The plan gave these reasons:",
            *[f"- {r}" for r in denial_reasons or ["(no reason given)"]],
            "",
            "The record shows:",
            *[f"- {s.text} {_cite(s.sources)}" for s in statements],
        ]
        missing = _missing(criteria)
        if missing:
            lines += ["", "We are obtaining from the prescriber:", *[f"- {m}" for m in missing]]
        lines += ["", "Sincerely,", facts.get("pharmacy_name") or "The pharmacy team"]
        return "\n".join(lines)


def keep_cited_sentences(text: str, known_ids: set[str]) -> list[str]:
    """Sentences of a model's narrative that cite at least one known evidence id and nothing else."""
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        sentence = sentence.strip()
        cited = CITATION.findall(sentence)
        if sentence and cited and all(c in known_ids for c in cited):
            kept.append(sentence)
    return kept


class LanguageModelDrafter(TemplateDrafter):
    """Narrative from an OpenAI-compatible endpoint; fields and missing items stay template-made.

    An HTTP call (up to ``timeout`` seconds): the case services run it before they lock anything
    (``uses_network``; docs/design.md "No network under a lock")."""

    name = "language-model"
    uses_network = True

    def __init__(self, *, url: str, model: str, token: str = "", timeout: int = 30):
        self.url, self.model, self.token, self.timeout = url.rstrip("/"), model, token, timeout

    def _complete(self, prompt: str) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "temperature": 0,
                "messages": [
                    {
                        "role": "system",
                        "content": "You draft prior authorization letters. Use only the evidence given. "
                        "End every sentence with the [id] of the evidence it uses.",
                    },
                    {"role": "user", "content": prompt},
                ],
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            f"{self.url}/chat/completions", data=body, headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured endpoint)
            data = json.loads(response.read(200_000))
        return data["choices"][0]["message"]["content"]

    def draft(self, *, facts: dict, evidence: list[dict], criteria: dict) -> Draft:
        base = super().draft(facts=facts, evidence=evidence, criteria=criteria)
        prompt = json.dumps(
            {"drug": facts.get("drug"), "evidence": [{"id": e["id"], "text": e["text"]} for e in evidence]}
        )
        try:
            narrative = self._complete(prompt)
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError):
            base.drafter = "template (language model unavailable)"
            return base
        known = {e["id"] for e in evidence}
        kept = keep_cited_sentences(narrative, known)
        if not kept:
            base.drafter = "template (language model gave no cited sentences)"
            return base
        statements = [Statement(CITATION.sub("", s).strip(), CITATION.findall(s)) for s in kept]
        base.statements = statements
        base.letter = _letter(facts, [f"- {s}" for s in kept], base.missing)
        base.drafter = f"{self.name}:{self.model}"
        return base


def get_drafter(config: dict | None, token: str = ""):
    if config and config.get("ENABLED") and config.get("URL"):
        return LanguageModelDrafter(
            url=config["URL"],
            model=config.get("MODEL", "default"),
            token=token,
            timeout=int(config.get("TIMEOUT", 30)),
        )
    return TemplateDrafter()
