"""What the kill scenario (bench/faults_kill.py) left, checked and printed: every 2xx has
exactly one audit record, no Idempotency-Key has two payments (at the hub or at the platform)
and replaying each key answers the same payment, every accepted judicial request ends final,
and `hub audit verify` passes, right after the kill (the tail since the last signed
checkpoint is unsigned) and at the end.
"""

from __future__ import annotations

from typing import Any

from bench.faults_load import Answer
from bench.faults_report import counts, fmt, statuses, table

#: The operation each kind of call is audited under (one record per call), and the upstream
#: step inside it (at most one record per call).
OWN_OPERATION = {
    "citizen": ("population", "lookup"),
    "payment": ("payment", "create"),
    "judicial": ("judicial-records", "request"),
}
UPSTREAM_STEP = {"payment": ("payment", "init"), "judicial": ("judicial-records", "submit")}


def kill_report(**r: Any) -> dict[str, Any]:
    answers: list[Answer] = r["answers"]
    records: dict[str, list[dict[str, Any]]] = r["records"]
    ok = [a for a in answers if a.ok]
    cut = [a for a in answers if a.status is None]
    audit = {"2xx": len(ok), "exactly_one": 0, "missing": [], "duplicated": [], "bad_status": []}
    for a in answers:
        own = [
            x
            for x in records.get(a.request_id, [])
            if (x["service"], x["operation"]) == OWN_OPERATION[a.kind]
        ]
        step = [
            x
            for x in records.get(a.request_id, [])
            if (x["service"], x["operation"]) == UPSTREAM_STEP.get(a.kind)
        ]
        if len(own) > 1 or len(step) > 1:
            audit["duplicated"].append(a.request_id)
        if a.ok:
            if not own:
                audit["missing"].append(a.request_id)
            elif len(own) == 1:
                audit["exactly_one"] += 1
                if own[0]["status"] >= 300:
                    audit["bad_status"].append(a.request_id)
    audit["answered_non_2xx_recorded"] = sum(
        1 for a in answers if a.status is not None and not a.ok and a.request_id in records
    )
    audit["cut_calls"] = len(cut)
    audit["cut_calls_recorded"] = sum(1 for a in cut if a.request_id in records)

    payments: list[Answer] = r["payments"]
    replays: list[Answer] = r["replays"]
    before, after = r["before"], r["after"]
    same = 0
    changed = []
    for first, again in zip(payments, replays, strict=True):
        row = after["rows"].get(first.key)
        expected = first.data_id if first.ok else (row["id"] if row else None)
        if again.ok and again.data_id == expected and row is not None and row["id"] == expected:
            same += 1
        else:
            changed.append(
                {
                    "key": first.key,
                    "first": first.data_id,
                    "replay": again.data_id,
                    "replay_status": again.status,
                }
            )
    keys_with_row = {a.key for a in payments if a.key in after["rows"]}
    upstream_per_key_after = [
        after["upstream_references"].get(after["rows"][k]["id"], 0) for k in keys_with_row
    ]
    pay = {
        "keys": len(payments),
        "2xx_first": sum(1 for a in payments if a.ok),
        "cut_first": sum(1 for a in payments if a.status is None),
        "hub_rows_before_replay": len(before["rows"]),
        "hub_statuses_before_replay": before["statuses"],
        "hub_rows_per_key_max": max(before["hub_rows_per_key_max"], after["hub_rows_per_key_max"]),
        "upstream_inits_per_payment_max": max(
            before["upstream_per_payment_max"], after["upstream_per_payment_max"]
        ),
        "upstream_unknown_to_hub": len(before["upstream_unknown_to_hub"])
        + len(after["upstream_unknown_to_hub"]),
        "replay_statuses": counts(a.status for a in replays),
        "replay_same_payment": same,
        "replay_changed": changed[:5],
        "hub_rows_after_replay": len(after["rows"]),
        "keys_with_one_upstream_payment_after_replay": sum(
            1 for n in upstream_per_key_after if n == 1
        ),
    }

    jobs: dict[str, Answer] = r["jobs"]
    final: dict[str, str] = r["final"]
    accepted = set(jobs)
    others = [row for row in r["all_jobs"] if row["id"] not in accepted]
    job = {
        "accepted_202": len(jobs),
        "pending_at_kill": len(r["pending_at_kill"]),
        "pending_at_kill_final_after": sum(1 for j in r["pending_at_kill"] if j in final),
        "final": len(final),
        "final_statuses": counts(final.values()),
        "seconds_to_all_final": r["jobs_final_s"],
        "never_final": sorted(accepted - set(final))[:5],
        "cut_submissions": len(others),
        "cut_submission_states": counts(row["status"] for row in others),
        # What upstream made of them (the hub sends its job id as maHoSoMCDT).
        "cut_submissions_upstream": counts(
            _upstream_state(r["upstream_requests"].get(row["id"])) for row in others
        ),
    }
    checks = {
        "every 2xx has exactly one audit record": not audit["missing"]
        and not audit["duplicated"]
        and not audit["bad_status"]
        and audit["exactly_one"] == len(ok),
        "no Idempotency-Key has two payments (hub, platform)": pay["hub_rows_per_key_max"] <= 1
        and pay["upstream_inits_per_payment_max"] <= 1
        and pay["upstream_unknown_to_hub"] == 0,
        "replaying each key answers the same payment": same == len(payments)
        and pay["keys_with_one_upstream_payment_after_replay"] == len(payments),
        "every accepted judicial request ends final": job["final"] == job["accepted_202"],
        "hub audit verify passes after the kill": r["event"]["verify_after_kill"]["exit"] == 0,
        "hub audit verify passes at the end": r["verify_end"]["exit"] == 0,
    }
    return {
        "scenario": "kill",
        "calls": r["calls"],
        "concurrency": r["concurrency"],
        "load_s": round(r["load_s"], 2),
        "killed_after_answers": r["event"]["killed_at_answers"],
        "hub_down_s": r["event"]["hub_down_s"],
        "answers": statuses(answers),
        "answers_after_restart": statuses(a for a in answers if a.restarted),
        "answers_by_kind": {
            kind: statuses(a for a in answers if a.kind == kind) for kind in OWN_OPERATION
        },
        "audit": audit,
        "payments": pay,
        "jobs": job,
        "unsigned_tail_after_kill": r["event"]["unsigned_tail"],
        "verify_after_kill": r["event"]["verify_after_kill"],
        "verify_end": r["verify_end"],
        "checks": checks,
    }


def _upstream_state(request: dict[str, Any] | None) -> str:
    if request is None:
        return "unknown upstream"
    return f"{request['status']}, push {request['push']['state']}"


def print_kill(result: dict[str, Any]) -> None:
    a, p, j = result["audit"], result["payments"], result["jobs"]
    print(
        f"\n== kill -9 in the middle of {result['calls']} calls "
        f"(concurrency {result['concurrency']}, {result['load_s']} s)"
    )
    rows = [
        ("hub SIGKILLed after", f"{result['killed_after_answers']} answers"),
        ("hub down (kill → healthy again)", f"{result['hub_down_s']} s"),
        ("answers", fmt(result["answers"])),
        ("  sent to the restarted hub", fmt(result["answers_after_restart"])),
        *((f"  {kind}", fmt(v)) for kind, v in result["answers_by_kind"].items()),
        ("2xx with exactly one audit record", f"{a['exactly_one']} of {a['2xx']}"),
        ("  missing / duplicated", f"{len(a['missing'])} / {len(a['duplicated'])}"),
        ("calls cut by the kill / with a record", f"{a['cut_calls']} / {a['cut_calls_recorded']}"),
        ("payment keys (2xx first / cut)", f"{p['keys']} ({p['2xx_first']} / {p['cut_first']})"),
        (
            "  hub rows after the kill",
            f"{p['hub_rows_before_replay']} {fmt(p['hub_statuses_before_replay'])}",
        ),
        ("  payments per key at the hub (max)", p["hub_rows_per_key_max"]),
        ("  INITs per payment at the platform (max)", p["upstream_inits_per_payment_max"]),
        (
            "  replays answering the same payment",
            f"{p['replay_same_payment']} of {p['keys']} {fmt(p['replay_statuses'])}",
        ),
        ("judicial requests accepted (202)", j["accepted_202"]),
        (
            "  pending at the kill → final after",
            f"{j['pending_at_kill']} → {j['pending_at_kill_final_after']}",
        ),
        (
            "  final after restart",
            f"{j['final']} of {j['accepted_202']} in {j['seconds_to_all_final']} s "
            + fmt(j["final_statuses"]),
        ),
        (
            "  submissions cut by the kill",
            f"{j['cut_submissions']} {fmt(j['cut_submission_states'])}",
        ),
        (
            "    upstream made of them",
            fmt(j["cut_submissions_upstream"]) or "-",
        ),
        ("records after the last checkpoint at the kill", result["unsigned_tail_after_kill"]),
        ("hub audit verify after the kill", _verify(result["verify_after_kill"])),
        ("hub audit verify at the end", _verify(result["verify_end"])),
    ]
    table(rows, result["checks"])


def _verify(found: dict[str, Any]) -> str:
    return f"exit {found['exit']} ({found['output']})"
