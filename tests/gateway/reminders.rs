//! Reminder plans end to end, on a clock the test moves: the gateway's dispatcher takes its
//! time from a [`ManualClock`], so a plan spanning weeks runs in seconds, through the real HTTP
//! API, the sled store and the simulated modem on a PTY.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use smsgate::dispatch::ManualClock;
use smsgate::server::Gateway;
use smsgate::sim::{SentMessage, SimHandle};

use crate::replies::{Receiver, SECRET};
use crate::{Running, sim, start, wait_modem_up};

const TO: &str = "+12025550123";
const NY: &str = "America/New_York";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Rig {
    r: Running,
    sim: SimHandle,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn rig(now: &str, tweak: impl FnOnce(&mut Gateway)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let clock = ManualClock::new(at(now));
    let c = clock.clock();
    let r = start(dir.path().join("store"), &sim, |gw| {
        gw.clock = c;
        tweak(gw);
    })
    .await;
    wait_modem_up(&r).await;
    Rig {
        r,
        sim,
        clock,
        _dir: dir,
    }
}

impl Rig {
    /// Moves the clock and gives the dispatcher time to act on it.
    async fn set(&self, t: &str) {
        self.clock.set(at(t));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// Waits until the simulator has `n` messages (or 5 s pass); returns them.
    async fn sent(&self, n: usize) -> Vec<SentMessage> {
        for _ in 0..100 {
            let s = self.sim.sent();
            if s.len() >= n {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.sim.sent()
    }

    async fn plan(&self, id: &str) -> Value {
        let (code, p) = self.r.get(&format!("/v1/reminders/{id}")).await;
        assert_eq!(code, 200, "{p}");
        p
    }

    async fn stop(self) {
        self.r.stop().await;
        self.sim.shutdown().await;
    }
}

fn step(plan: &Value, i: usize) -> &Value {
    &plan["steps"][i]
}

fn statuses(plan: &Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

fn plan_body(invoice: &str, due: &str, schedule: Value) -> Value {
    json!({
        "to": TO,
        "invoice": invoice,
        "amount": "120.50",
        "currency": "USD",
        "due_date": due,
        "timezone": NY,
        "name": "Ana",
        "unit": "4B",
        "pay_url": "https://pay.example.com/i/1042",
        "schedule": schedule,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_sends_each_step_at_its_local_time_and_paying_stops_the_rest() {
    // Ten days before the due date, 10:00 in New York.
    let rig = rig("2026-11-21T15:00:00Z", |_| {}).await;
    let body = plan_body(
        "INV-1042",
        "2026-12-01",
        json!([
            {"offset": "-7d", "template": "upcoming"},
            {"offset": "0d", "template": "due_today"},
            {"offset": "+3d", "template": "past_due"},
            {"offset": "+10d", "template": "second_notice",
             "reply_options": {"1": "call_me", "2": "pay_minimum"}},
        ]),
    );
    let (code, plan) = rig.r.post("/v1/reminders", &body).await;
    assert_eq!(code, 201, "{plan}");
    let id = plan["id"].as_str().unwrap().to_string();
    assert_eq!(plan["status"], "active");
    assert_eq!(statuses(&plan), ["scheduled"; 4]);
    let planned: Vec<&str> = (0..4)
        .map(|i| step(&plan, i)["send_at"].as_str().unwrap())
        .collect();
    assert_eq!(
        planned,
        [
            "2026-11-24T10:00:00-05:00",
            "2026-12-01T10:00:00-05:00",
            "2026-12-04T10:00:00-05:00",
            "2026-12-11T10:00:00-05:00"
        ]
    );
    for i in 0..4 {
        let s = step(&plan, i);
        assert_eq!(s["encoding"], "gsm7", "{s}");
        assert_eq!(s["parts"], 1, "{s}");
        assert!(s["text"].as_str().unwrap().contains("INV-1042"), "{s}");
    }
    assert!(
        step(&plan, 0)["text"].as_str().unwrap().contains("$120.50"),
        "the amount is formatted as money: {}",
        step(&plan, 0)["text"]
    );
    assert_eq!(step(&plan, 3)["reply_options"]["1"], "call_me");

    // A minute early: nothing.
    rig.set("2026-11-24T14:59:00Z").await;
    assert!(rig.sim.sent().is_empty());
    rig.set("2026-11-24T15:00:00Z").await;
    let sent = rig.sent(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, TO);
    assert_eq!(sent[0].text, step(&plan, 0)["text"].as_str().unwrap());

    rig.set("2026-12-01T15:00:00Z").await;
    let sent = rig.sent(2).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].text, step(&plan, 1)["text"].as_str().unwrap());

    // Paid at 11:00 on the due date: the rest is cancelled, one confirmation goes.
    rig.set("2026-12-01T16:00:00Z").await;
    let (code, paid) = rig.r.post("/v1/reminders/INV-1042/paid", &json!({})).await;
    assert_eq!(code, 200, "{paid}");
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["steps"].as_array().unwrap().len(), 5);
    assert_eq!(step(&paid, 2)["status"], "cancelled");
    assert_eq!(step(&paid, 2)["status_reason"], "paid");
    assert_eq!(step(&paid, 3)["status"], "cancelled");
    assert_eq!(step(&paid, 4)["kind"], "payment_received");
    let sent = rig.sent(3).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2].text, step(&paid, 4)["text"].as_str().unwrap());

    // Paid again: the same plan, no second confirmation.
    let (code, again) = rig
        .r
        .post(&format!("/v1/reminders/{id}/paid"), &json!({}))
        .await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["steps"].as_array().unwrap().len(), 5);

    // The cancelled steps' times pass: nothing more goes out.
    rig.set("2026-12-04T15:00:00Z").await;
    rig.set("2026-12-11T15:00:00Z").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.sim.sent().len(), 3);
    let p = rig.plan(&id).await;
    assert_eq!(
        statuses(&p),
        ["sent", "sent", "cancelled", "cancelled", "sent"]
    );
    // The message of a step names its plan, and its history says why it was cancelled.
    let mid = step(&p, 2)["message_id"].as_str().unwrap();
    let (_, m) = rig.r.get(&format!("/v1/messages/{mid}")).await;
    assert_eq!(m["reminder"]["plan_id"], id.as_str());
    assert_eq!(m["metadata"]["invoice"], "INV-1042");
    let last = m["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "cancelled");
    assert!(last["reason"].as_str().unwrap().contains("paid"), "{last}");
    // Made by the plan's key, cancelled by the key that said it was paid.
    assert_eq!(m["events"][0]["actor"], "test", "{m}");
    assert_eq!(last["actor"], "test", "{last}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daylight_saving_change_does_not_shift_the_local_send_time() {
    // New York leaves daylight saving time on 2026-11-01.
    let rig = rig("2026-10-20T12:00:00Z", |_| {}).await;
    let body = plan_body(
        "INV-DST",
        "2026-11-05",
        json!([
            {"offset": "-7d", "template": "upcoming"},
            {"offset": "+3d", "template": "past_due"},
        ]),
    );
    let (code, plan) = rig.r.post("/v1/reminders", &body).await;
    assert_eq!(code, 201, "{plan}");
    assert_eq!(step(&plan, 0)["send_at"], "2026-10-29T10:00:00-04:00");
    assert_eq!(step(&plan, 1)["send_at"], "2026-11-08T10:00:00-05:00");
    rig.set("2026-10-29T14:00:00Z").await;
    assert_eq!(rig.sent(1).await.len(), 1);
    // 14:00 UTC is 09:00 in November: not yet.
    rig.set("2026-11-08T14:00:00Z").await;
    assert_eq!(rig.sim.sent().len(), 1);
    rig.set("2026-11-08T15:00:00Z").await;
    let sent = rig.sent(2).await;
    assert_eq!(sent.len(), 2);
    let p = rig.plan("INV-DST").await;
    assert_eq!(step(&p, 1)["sent_at"], "2026-11-08T15:00:00Z");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_plan_skips_past_steps_and_a_night_step_waits_for_the_morning() {
    // 07:00 in New York, four days after the due date.
    let rig = rig("2026-12-05T12:00:00Z", |_| {}).await;
    let schedule = json!([
        {"offset": "-7d", "template": "upcoming"},
        {"offset": "0d", "template": "due_today"},
        {"offset": "+3d", "template": "past_due"},
        {"offset": "+5d", "template": "second_notice", "time": "23:00"},
    ]);
    let (code, plan) = rig
        .r
        .post(
            "/v1/reminders",
            &plan_body("INV-LATE", "2026-12-01", schedule.clone()),
        )
        .await;
    assert_eq!(code, 201, "{plan}");
    assert_eq!(
        statuses(&plan),
        ["skipped", "skipped", "skipped", "scheduled"]
    );
    assert_eq!(step(&plan, 0)["status_reason"], "past");
    // Planned for 23:00; the window (08:00–21:00) moves it to 08:00 the next day.
    assert_eq!(step(&plan, 3)["planned_at"], "2026-12-06T23:00:00-05:00");
    assert_eq!(step(&plan, 3)["send_at"], "2026-12-07T08:00:00-05:00");

    // With `send_latest`, the latest past step goes once the window opens; the older ones never.
    let mut late = plan_body("INV-LATE-2", "2026-12-01", schedule);
    late["to"] = json!("+12025550124");
    late["past_steps"] = json!("send_latest");
    let (code, latest) = rig.r.post("/v1/reminders", &late).await;
    assert_eq!(code, 201, "{latest}");
    assert_eq!(
        statuses(&latest),
        ["skipped", "skipped", "scheduled", "scheduled"]
    );
    assert_eq!(step(&latest, 2)["send_at"], "2026-12-05T08:00:00-05:00");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rig.sim.sent().is_empty(), "nothing at 07:00");
    rig.set("2026-12-05T13:00:00Z").await;
    let sent = rig.sent(1).await;
    assert_eq!(sent.len(), 1, "one text, not a burst of the missed steps");
    assert_eq!(sent[0].to, "+12025550124");
    assert_eq!(sent[0].text, step(&latest, 2)["text"].as_str().unwrap());

    // 23:00 and the small hours pass quietly; 08:00 brings both 23:00 steps.
    rig.set("2026-12-07T04:00:00Z").await;
    rig.set("2026-12-07T12:59:00Z").await;
    assert_eq!(rig.sim.sent().len(), 1);
    rig.set("2026-12-07T13:00:00Z").await;
    let sent = rig.sent(3).await;
    assert_eq!(sent.len(), 3);
    let p = rig.plan("INV-LATE").await;
    assert_eq!(step(&p, 3)["status"], "sent");
    assert_eq!(step(&p, 3)["sent_at"], "2026-12-07T13:00:00Z");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_recipient_cap_holds_the_fourth_reminder_of_a_week() {
    // A last step may wait ten days (the default, three, would expire it first).
    let rig = rig("2026-11-30T12:00:00Z", |gw| {
        gw.reminders.last_step_expiry = chrono::Duration::days(10);
    })
    .await;
    // Four invoices, one number, each with one step on the same morning.
    let mut ids = Vec::new();
    for (n, time) in ["10:00", "10:01", "10:02", "10:03"].iter().enumerate() {
        let body = plan_body(
            &format!("INV-CAP-{n}"),
            "2026-12-01",
            json!([{"offset": "0d", "template": "due_today", "time": time}]),
        );
        let (code, p) = rig.r.post("/v1/reminders", &body).await;
        assert_eq!(code, 201, "{p}");
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    rig.set("2026-12-01T15:00:00Z").await;
    rig.set("2026-12-01T15:01:00Z").await;
    rig.set("2026-12-01T15:02:00Z").await;
    rig.set("2026-12-01T15:03:00Z").await;
    rig.set("2026-12-01T15:05:00Z").await;
    let sent = rig.sent(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(rig.sim.sent().len(), 3, "the cap is 3 in 7 days");
    let p = rig.plan(&ids[3]).await;
    assert_eq!(step(&p, 0)["status"], "scheduled", "it still waits");
    assert_eq!(step(&p, 0)["status_reason"], "cap");
    // It may go when the first of the three leaves the 7-day period.
    assert_eq!(step(&p, 0)["send_at"], "2026-12-08T10:00:00-05:00");
    rig.set("2026-12-08T15:00:00Z").await;
    assert_eq!(rig.sent(4).await.len(), 4);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_precheck_can_cancel_a_step_and_a_failing_one_holds_it() {
    let billing = Receiver::start().await;
    let url = format!("http://{}/precheck", billing.addr);
    let rig = rig("2026-11-30T12:00:00Z", |gw| {
        gw.webhooks.secret = Some(SECRET.into());
        gw.reminders.precheck_retry = chrono::Duration::minutes(5);
    })
    .await;
    // Answers are scripted per invoice through the receiver's answer hook.
    billing.answer(|body| match body["plan"]["invoice"].as_str() {
        Some("INV-PAID") => (200, json!({"send": false, "reason": "paid at the counter"})),
        Some("INV-OK") => (200, json!({"send": true})),
        _ => (503, json!({})),
    });
    for (n, invoice) in ["INV-PAID", "INV-OK", "INV-DOWN"].iter().enumerate() {
        let mut body = plan_body(
            invoice,
            "2026-12-01",
            json!([{"offset": "0d", "template": "due_today"}]),
        );
        body["to"] = json!(format!("+1202555012{n}"));
        body["precheck_url"] = json!(url);
        let (code, p) = rig.r.post("/v1/reminders", &body).await;
        assert_eq!(code, 201, "{p}");
    }
    rig.set("2026-12-01T15:00:00Z").await;
    let sent = rig.sent(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(rig.sim.sent().len(), 1, "only the confirmed step went");
    assert_eq!(sent[0].to, "+12025550121");
    let asked = billing.got();
    assert!(asked.len() >= 3, "{asked:?}");
    assert!(asked.iter().all(|g| g.verified), "every precheck is signed");
    assert_eq!(asked[0].body["type"], "reminder.precheck");

    let p = rig.plan("INV-PAID").await;
    assert_eq!(step(&p, 0)["status"], "cancelled");
    assert_eq!(step(&p, 0)["status_reason"], "precheck");
    let p = rig.plan("INV-DOWN").await;
    assert_eq!(step(&p, 0)["status"], "scheduled", "it still waits");
    assert_eq!(step(&p, 0)["status_reason"], "precheck_unavailable");
    assert_eq!(step(&p, 0)["send_at"], "2026-12-01T10:05:00-05:00");

    // The billing system comes back: the held step is asked again and goes.
    billing.answer(|_| (200, json!({"send": true})));
    rig.set("2026-12-01T15:05:00Z").await;
    assert_eq!(rig.sent(2).await.len(), 2);
    let p = rig.plan("INV-DOWN").await;
    assert_eq!(step(&p, 0)["status"], "sent");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_plan_per_invoice_reschedule_and_cancel() {
    let rig = rig("2026-11-20T15:00:00Z", |_| {}).await;
    let body = plan_body(
        "INV-7",
        "2026-12-01",
        json!([
            {"offset": "-7d", "template": "upcoming"},
            {"offset": "+3d", "template": "past_due"},
        ]),
    );
    let (code, first) = rig.r.post("/v1/reminders", &body).await;
    assert_eq!(code, 201, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    // The same request again: the same plan, nothing new stored.
    let (code, again) = rig.r.post("/v1/reminders", &body).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(
        again["steps"][0]["message_id"],
        first["steps"][0]["message_id"]
    );
    let (_, list) = rig.r.get("/v1/messages?to=%2B12025550123").await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 2);
    // Other values for the same invoice: refused, pointing at PATCH.
    let mut other = body.clone();
    other["amount"] = json!("99.00");
    let (code, e) = rig.r.post("/v1/reminders", &other).await;
    assert_eq!(code, 409, "{e}");
    assert_eq!(e["type"], "urn:smsgate:problem:invoice_exists");
    assert!(e["detail"].as_str().unwrap().contains(&id));

    // The first step goes; then the due date moves a week and the amount changes.
    rig.set("2026-11-24T15:00:00Z").await;
    assert_eq!(rig.sent(1).await.len(), 1);
    let r = &rig.r;
    let patch = r
        .http
        .patch(format!("{}/v1/reminders/INV-7", r.base))
        .bearer_auth(crate::TOKEN)
        .json(&json!({"due_date": "2026-12-08", "amount": "99.5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status().as_u16(), 200);
    let p: Value = patch.json().await.unwrap();
    assert_eq!(p["amount"], "99.50");
    assert_eq!(step(&p, 0)["status"], "sent", "a sent step stays as it was");
    assert_eq!(step(&p, 0)["message_id"], first["steps"][0]["message_id"]);
    let old = first["steps"][1]["message_id"].as_str().unwrap();
    assert_eq!(step(&p, 1)["replaced_messages"], json!([old]));
    assert_ne!(step(&p, 1)["message_id"].as_str().unwrap(), old);
    assert_eq!(step(&p, 1)["send_at"], "2026-12-11T10:00:00-05:00");
    assert!(
        step(&p, 1)["text"].as_str().unwrap().contains("$99.50"),
        "{}",
        step(&p, 1)
    );
    let (_, m) = r.get(&format!("/v1/messages/{old}")).await;
    assert_eq!(m["status"], "cancelled");
    assert_eq!(m["status_reason"], "rescheduled");
    // At the old time nothing goes; at the new one the new text does.
    rig.set("2026-12-04T15:00:00Z").await;
    assert_eq!(rig.sim.sent().len(), 1);

    // Cancelled: the pending step with it.
    let del = r
        .http
        .delete(format!("{}/v1/reminders/{id}", r.base))
        .bearer_auth(crate::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    let p: Value = del.json().await.unwrap();
    assert_eq!(p["status"], "cancelled");
    assert_eq!(step(&p, 1)["status"], "cancelled");
    rig.set("2026-12-11T15:00:00Z").await;
    assert_eq!(rig.sim.sent().len(), 1);
    // A cancelled plan is not paid or changed any more.
    let (code, e) = r.post("/v1/reminders/INV-7/paid", &json!({})).await;
    assert_eq!(code, 409, "{e}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_checked_when_set_and_when_a_plan_is_made() {
    let rig = rig("2026-11-20T15:00:00Z", |_| {}).await;
    let r = &rig.r;
    let put = |name: &str, text: &str| {
        let req = r
            .http
            .put(format!("{}/v1/templates/{name}", r.base))
            .bearer_auth(crate::TOKEN)
            .json(&json!({ "text": text }));
        async move {
            let resp = req.send().await.unwrap();
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // Every shipped template is listed, renders, and fits one GSM-7 part.
    let (code, list) = r.get("/v1/templates").await;
    assert_eq!(code, 200);
    let names: Vec<&str> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for n in [
        "invoice_issued",
        "upcoming",
        "due_today",
        "past_due",
        "second_notice",
        "final_notice",
        "payment_received",
        "payment_failed",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    for t in list["templates"].as_array().unwrap() {
        assert_eq!(t["origin"], "default");
        assert_eq!(t["preview"]["encoding"], "gsm7", "{t}");
        assert_eq!(t["preview"]["parts"], 1, "{t}");
    }
    // An unknown filter or a syntax error is refused when the template is set.
    let (code, e) = put("friendly", "Hi {{ name | shout }}").await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["errors"][0]["field"], "text");
    let (code, e) = put("friendly", "Hi {{ name ").await;
    assert_eq!(code, 422, "{e}");
    // A good one: stored, previewed, used by plans.
    let (code, t) = put(
        "friendly",
        "Hello {{ name }}! {{ invoice }}: {{ amount | money }} by {{ due_date | date }}. Ref {{ ref }}",
    )
    .await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["origin"], "api");
    assert_eq!(t["preview"]["custom_vars"], json!(["ref"]));
    // A plan without the custom variable: refused at POST, not half-rendered later.
    let (code, e) = r
        .post(
            "/v1/reminders",
            &plan_body(
                "INV-T1",
                "2026-12-01",
                json!([{"offset": "-3d", "template": "friendly"}]),
            ),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["errors"][0]["field"], "schedule[0].template");
    assert!(
        e["errors"][0]["detail"].as_str().unwrap().contains("ref"),
        "{e}"
    );
    let mut ok = plan_body(
        "INV-T1",
        "2026-12-01",
        json!([{"offset": "-3d", "template": "friendly"}]),
    );
    ok["vars"] = json!({"ref": "A7"});
    let (code, p) = r.post("/v1/reminders", &ok).await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(
        step(&p, 0)["text"],
        "Hello Ana! INV-T1: $120.50 by Dec 1. Ref A7"
    );
    // A template that renders past the parts cap is refused at POST.
    let (code, _) = put("long", &format!("{{{{ name }}}} {}", "x".repeat(1200))).await;
    assert_eq!(code, 422, "over 6 parts with sample values");
    let (code, e) = r
        .post(
            "/v1/reminders",
            &plan_body(
                "INV-T2",
                "2026-12-01",
                json!([{"offset": "-3d", "template": "nope"}]),
            ),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert!(
        e["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no template"),
        "{e}"
    );
    // Bad plan fields, each named.
    let mut bad = plan_body(
        "INV-T3",
        "2026-13-01",
        json!([{"offset": "-3x", "template": "upcoming"}]),
    );
    bad["currency"] = json!("ZZZ");
    bad["timezone"] = json!("Mars/Olympus");
    let (code, e) = r.post("/v1/reminders", &bad).await;
    assert_eq!(code, 422, "{e}");
    let fields: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in ["due_date", "currency", "timezone", "schedule[0].offset"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    // Deleting the API's template brings nothing back for a name that only it had.
    let del = r
        .http
        .delete(format!("{}/v1/templates/friendly", r.base))
        .bearer_auth(crate::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);
    let (code, _) = r.get("/v1/templates/friendly").await;
    assert_eq!(code, 404);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_days_the_drop_policy_windows_on_plain_messages_and_answers_to_a_step() {
    let rig = rig("2026-12-24T15:00:00Z", |gw| {
        gw.reminders.quiet =
            smsgate::reminders::window::QuietDays::parse(&["2026-12-25".into()], &[]).unwrap();
        gw.reminders.cap = 1;
        gw.reminders.cap_policy = smsgate::reminders::config::CapPolicy::Drop;
    })
    .await;
    // A step on a public holiday goes on the next open day, when the window opens.
    let (code, xmas) = rig
        .r
        .post(
            "/v1/reminders",
            &plan_body(
                "INV-Q",
                "2026-12-25",
                json!([{"offset": "0d", "template": "due_today"}]),
            ),
        )
        .await;
    assert_eq!(code, 201, "{xmas}");
    assert_eq!(step(&xmas, 0)["send_at"], "2026-12-26T08:00:00-05:00");

    // A plain message may bring its own window; at 22:00 local it waits for 09:00.
    rig.set("2026-12-24T03:00:00Z").await;
    let (code, m) = rig
        .r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550124", "text": "Office closed tomorrow.",
                    "send_window": {"start": "09:00", "end": "17:00"}, "timezone": NY}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["next_attempt_at"], "2026-12-24T14:00:00Z");
    assert_eq!(m["send_window"]["timezone"], NY);
    let (code, e) = rig
        .r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550124", "text": "x", "send_window": {"start": "17:00", "end": "09:00"}}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["errors"][0]["field"], "send_window");
    // One that would expire before its window opens is refused, not accepted to expire.
    let (code, e) = rig
        .r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550124", "text": "x", "timezone": NY,
                    "send_window": {"start": "09:00", "end": "17:00"},
                    "expires_at": "2026-12-24T08:30:00-05:00"}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["errors"][0]["field"], "expires_at");
    assert!(
        e["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("2026-12-24 09:00 EST"),
        "{e}"
    );

    // Two plans to one number, cap 1 with `drop`: the second step is cancelled, not sent.
    rig.set("2026-12-28T12:00:00Z").await;
    for (invoice, time) in [("INV-D1", "10:00"), ("INV-D2", "10:30")] {
        let body = plan_body(
            invoice,
            "2026-12-30",
            json!([{"offset": "0d", "template": "second_notice", "time": time,
                    "reply_options": {"1": "call_me", "2": "pay_minimum"}}]),
        );
        let (code, p) = rig.r.post("/v1/reminders", &body).await;
        assert_eq!(code, 201, "{p}");
    }
    rig.set("2026-12-30T15:00:00Z").await;
    assert_eq!(rig.sent(1).await.len(), 1);
    rig.set("2026-12-30T15:30:00Z").await;
    let p = rig.plan("INV-D2").await;
    assert_eq!(step(&p, 0)["status"], "cancelled");
    assert_eq!(step(&p, 0)["status_reason"], "cap");
    assert_eq!(rig.sim.sent().len(), 1);

    // The customer answers "1": the plan shows it on the step and for the whole plan.
    rig.sim.inject_inbound(TO, "1", false).unwrap();
    let mut p = Value::Null;
    for _ in 0..100 {
        p = rig.plan("INV-D1").await;
        if !p["replies"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(p["replies"][0]["action"], "call_me", "{p}");
    assert_eq!(p["replies"][0]["step"], 0);
    assert_eq!(step(&p, 0)["replies"][0]["choice"], "1");

    // A failed payment: one text per Idempotency-Key, however often the call is retried.
    let fail = || {
        rig.r
            .http
            .post(format!("{}/v1/reminders/INV-D1/payment-failed", rig.r.base))
            .bearer_auth(crate::TOKEN)
            .header("idempotency-key", "bounce-1")
            .json(&json!({"reason": "card declined"}))
            .send()
    };
    let first = fail().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let first: Value = first.json().await.unwrap();
    let again = fail().await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let p = rig.plan("INV-D1").await;
    assert_eq!(
        p["steps"].as_array().unwrap().len(),
        2,
        "one payment_failed step: {p}"
    );
    assert_eq!(step(&p, 1)["kind"], "payment_failed");
    assert_eq!(step(&first, 1)["message_id"], step(&p, 1)["message_id"]);
    assert!(step(&p, 1)["text"].as_str().unwrap().contains("INV-D1"));
    assert_eq!(rig.sent(2).await.len(), 2, "payment texts are not capped");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_and_its_pending_steps_survive_a_restart() {
    let Rig {
        r,
        sim,
        clock,
        _dir: dir,
    } = rig("2026-11-21T15:00:00Z", |_| {}).await;
    let body = plan_body(
        "INV-R",
        "2026-12-01",
        json!([{"offset": "-7d", "template": "upcoming"}, {"offset": "0d", "template": "due_today"}]),
    );
    let (code, plan) = r.post("/v1/reminders", &body).await;
    assert_eq!(code, 201, "{plan}");
    r.stop().await;
    let c = clock.clock();
    let r = start(dir.path().join("store"), &sim, |gw| gw.clock = c).await;
    wait_modem_up(&r).await;
    let rig = Rig {
        r,
        sim,
        clock,
        _dir: dir,
    };
    // The plan is there as it was, and its invoice still maps to it.
    let p = rig.plan("INV-R").await;
    assert_eq!(p["id"], plan["id"]);
    assert_eq!(statuses(&p), ["scheduled", "scheduled"]);
    let (code, _) = rig.r.post("/v1/reminders", &body).await;
    assert_eq!(code, 200, "still one plan per invoice");
    rig.set("2026-11-24T15:00:00Z").await;
    let sent = rig.sent(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text, step(&plan, 0)["text"].as_str().unwrap());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precheck_that_never_answers_holds_back_only_its_own_step() {
    // A billing system that accepts the connection and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = silent.accept().await {
            keep.lock().unwrap().push(s);
        }
    });
    let rig = rig("2026-11-30T12:00:00Z", |gw| {
        gw.reminders.precheck_timeout = Duration::from_secs(30);
    })
    .await;
    let mut body = plan_body(
        "INV-SLOW",
        "2026-12-01",
        json!([{"offset": "0d", "template": "due_today"}]),
    );
    body["precheck_url"] = json!(format!("http://{addr}/precheck"));
    let (code, p) = rig.r.post("/v1/reminders", &body).await;
    assert_eq!(code, 201, "{p}");
    rig.set("2026-12-01T15:00:00Z").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while held.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the precheck was never asked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While it hangs, five plain messages go through the same (only) modem.
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for n in 0..5 {
        let (code, v) = rig
            .r
            .post(
                "/v1/messages",
                &json!({"to": format!("+1202555013{n}"), "text": format!("plain {n}")}),
            )
            .await;
        assert_eq!(code, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        assert_eq!(
            rig.r.wait_status(id, "sent", Duration::from_secs(10)).await,
            "sent",
            "{id}"
        );
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "plain messages waited {took:?} behind a 30 s precheck"
    );
    assert_eq!(rig.sim.sent().len(), 5, "the step itself did not go");
    let p = rig.plan("INV-SLOW").await;
    assert_eq!(step(&p, 0)["status"], "scheduled", "{p}");
    // Stopping does not wait for the unanswered question.
    let stopping = std::time::Instant::now();
    rig.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precheck_answer_over_4_kib_is_refused() {
    let billing = Receiver::start().await;
    let rig = rig("2026-11-30T12:00:00Z", |gw| {
        gw.reminders.precheck_retry = chrono::Duration::minutes(5);
    })
    .await;
    billing.answer(|_| (200, json!({"send": true, "pad": "x".repeat(5000)})));
    let mut body = plan_body(
        "INV-BIG",
        "2026-12-01",
        json!([{"offset": "0d", "template": "due_today"}]),
    );
    body["precheck_url"] = json!(format!("http://{}/precheck", billing.addr));
    let (code, p) = rig.r.post("/v1/reminders", &body).await;
    assert_eq!(code, 201, "{p}");
    rig.set("2026-12-01T15:00:00Z").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let p = loop {
        let p = rig.plan("INV-BIG").await;
        if step(&p, 0)["status_reason"] == "precheck_unavailable" {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "never held: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(step(&p, 0)["status"], "scheduled");
    assert!(rig.sim.sent().is_empty());
    let id = step(&p, 0)["message_id"].as_str().unwrap().to_string();
    let (_, history) = rig.r.get(&format!("/v1/messages/{id}/history")).await;
    assert!(
        history.to_string().contains("precheck answer over 4 KiB"),
        "{history}"
    );
    // An answer within the limit is read: the step goes when it is asked again.
    billing.answer(|_| (200, json!({"send": true, "pad": "x".repeat(3000)})));
    rig.set("2026-12-01T15:05:00Z").await;
    assert_eq!(rig.sent(1).await.len(), 1);
    rig.stop().await;
}
