//! `GET …/Messages.json`: the list, sent and received messages merged newest first, filtered
//! and paged the way Twilio does, read from the store in chunks.

use super::*;

/// One record of a list: a sent or a received message.
enum Record {
    Out(Box<Message>),
    In(Box<InboundMessage>),
}

impl Record {
    fn id(&self) -> &str {
        match self {
            Record::Out(m) => &m.id,
            Record::In(m) => &m.id,
        }
    }
}

/// The list's filters.
struct ListQuery {
    to: Option<String>,
    from: Option<String>,
    /// Sent at or after.
    after: Option<DateTime<Utc>>,
    /// Sent before.
    before: Option<DateTime<Utc>>,
    page_size: usize,
    page: usize,
    token: Option<String>,
    /// The filters as given, for the page URIs.
    kept: Vec<(String, String)>,
}

/// A `DateSent` value: a day (`2026-12-06`) or a time (`2026-12-06T10:00:00Z`).
fn date_bound(v: &str) -> Result<(DateTime<Utc>, bool), TwilioError> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        return Ok((t, true));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| (t.with_timezone(&Utc), false))
        .map_err(|_| {
            TwilioError::bad(
                21600,
                format!("DateSent {v:?} is not a date (YYYY-MM-DD) or an ISO 8601 time"),
            )
        })
}

fn list_query(query: Option<&str>) -> Result<ListQuery, TwilioError> {
    let p = crate::twilio::parse_form(query.unwrap_or(""));
    let mut q = ListQuery {
        to: None,
        from: None,
        after: None,
        before: None,
        page_size: 50,
        page: 0,
        token: None,
        kept: Vec::new(),
    };
    let day = chrono::Duration::days(1);
    for (k, v) in &p {
        match k.as_str() {
            "To" => q.to = Some(v.clone()),
            "From" => q.from = Some(v.clone()),
            "DateSent" => {
                let (t, is_day) = date_bound(v)?;
                q.after = Some(t);
                q.before = Some(if is_day {
                    t + day
                } else {
                    t + chrono::Duration::seconds(1)
                });
            }
            "DateSent>" => q.after = Some(date_bound(v)?.0),
            "DateSent<" => {
                let (t, is_day) = date_bound(v)?;
                q.before = Some(if is_day {
                    t + day
                } else {
                    t + chrono::Duration::seconds(1)
                });
            }
            "PageSize" => {
                q.page_size = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        TwilioError::bad(21600, format!("PageSize must be 1 to {MAX_PAGE}"))
                    })?;
                continue;
            }
            "Page" => {
                q.page = v
                    .parse()
                    .map_err(|_| TwilioError::bad(21600, "Page must be a number"))?;
                continue;
            }
            "PageToken" => {
                let id = v.strip_prefix("PA").and_then(id_of_token).ok_or_else(|| {
                    TwilioError::bad(21600, "PageToken is not one this API returned")
                })?;
                q.token = Some(id);
                continue;
            }
            _ => continue,
        }
        q.kept.push((k.clone(), v.clone()));
    }
    Ok(q)
}

/// Records a list page reads, fetched from the store in chunks.
const CHUNK: usize = 200;

/// One of the lists merged into a page (sent or received messages), newest first.
struct Stream<T> {
    buf: VecDeque<T>,
    after: Option<String>,
    done: bool,
}

impl<T> Stream<T> {
    fn new(after: Option<String>) -> Self {
        Stream {
            buf: VecDeque::new(),
            after,
            done: false,
        }
    }

    /// Fetches the next chunk when the buffer is empty; `true` when that chunk held nothing
    /// the filter keeps but more may follow (look again before merging).
    fn refill(
        &mut self,
        scanned: &mut usize,
        fetch: impl FnOnce(Option<String>) -> Result<Vec<T>, crate::store::StoreError>,
        id: impl Fn(&T) -> &str,
        keep: impl Fn(&T) -> bool,
    ) -> Result<bool, crate::store::StoreError> {
        if !self.buf.is_empty() || self.done {
            return Ok(false);
        }
        let chunk = fetch(self.after.clone())?;
        self.done = chunk.len() < CHUNK;
        *scanned += chunk.len();
        if let Some(last) = chunk.last() {
            self.after = Some(id(last).to_string());
        }
        self.buf.extend(chunk.into_iter().filter(|r| keep(r)));
        Ok(self.buf.is_empty() && !self.done)
    }
}

fn id_of_token(t: &str) -> Option<String> {
    crate::store::id_key(t).map(|_| t.to_string())
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: sent and received messages, newest
/// first, filtered by `To`, `From` and `DateSent` (`DateSent<`, `DateSent>`), paged with
/// `PageSize` and the `next_page_uri` of each page.
pub async fn list(
    State(state): State<AppState>,
    Extension(account): Extension<Account>,
    RawQuery(query): RawQuery,
) -> Result<Response, TwilioError> {
    let q = list_query(query.as_deref())?;
    let region = state.cfg.messages.default_region.as_deref();
    let norm = |n: &str| number_key(n, region);
    let to = q.to.as_deref().map(norm);
    let from = q.from.as_deref().map(norm);
    // Which modems a `From` (outbound) or a `To` (inbound) names.
    let modems = state.modems();
    let names_modem = |filter: &Option<String>, raw: &Option<String>, modem: &str| -> bool {
        filter.is_none()
            || raw.as_deref() == Some(modem)
            || modems.iter().any(|h| {
                h.name() == modem && h.status().info.own_number.as_deref().map(norm) == *filter
            })
    };
    let in_dates = |t: Option<DateTime<Utc>>| match (q.after, q.before) {
        (None, None) => true,
        _ => t.is_some_and(|t| q.after.is_none_or(|a| t >= a) && q.before.is_none_or(|b| t < b)),
    };
    let keep_out = |m: &Message| {
        to.as_deref().is_none_or(|t| m.to == t)
            && (from.is_none()
                || m.twilio.as_ref().and_then(|l| l.from.as_deref()).map(norm) == from
                || m.modem
                    .as_deref()
                    .is_some_and(|n| names_modem(&from, &q.from, n)))
            && in_dates(m.sent_at)
    };
    let keep_in = |m: &InboundMessage| {
        from.as_deref().is_none_or(|f| m.from == f)
            && names_modem(&to, &q.to, &m.modem)
            && in_dates(Some(m.received_at))
    };
    let mut outs = Stream::new(q.token.clone());
    let mut ins = Stream::new(q.token.clone());
    let mut scanned = 0;
    let mut page: Vec<Record> = Vec::new();
    while page.len() <= q.page_size && scanned < MAX_SCAN {
        let more_out = outs.refill(
            &mut scanned,
            |after| {
                state.store.list(&ListFilter {
                    to: to.clone(),
                    after,
                    limit: CHUNK,
                    ..ListFilter::default()
                })
            },
            |m| &m.id,
            |m| keep_out(m),
        )?;
        let more_in = ins.refill(
            &mut scanned,
            |after| {
                state.store.list_inbound(&InboundFilter {
                    from: from.clone(),
                    after,
                    limit: CHUNK,
                    ..InboundFilter::default()
                })
            },
            |m| &m.id,
            |m| keep_in(m),
        )?;
        if more_out || more_in {
            continue;
        }
        let (outs, ins) = (&mut outs.buf, &mut ins.buf);
        let next = match (outs.front(), ins.front()) {
            (Some(o), Some(i)) if o.id >= i.id => {
                outs.pop_front().map(|m| Record::Out(Box::new(m)))
            }
            (Some(_), Some(_)) | (None, Some(_)) => {
                ins.pop_front().map(|m| Record::In(Box::new(m)))
            }
            (Some(_), None) => outs.pop_front().map(|m| Record::Out(Box::new(m))),
            (None, None) => None,
        };
        match next {
            Some(r) => page.push(r),
            None => break,
        }
    }
    let more = page.len() > q.page_size;
    page.truncate(q.page_size);
    let base = format!("/{API_VERSION}/Accounts/{}/Messages.json", account.sid);
    let uri_with = |extra: &[(String, String)]| {
        let mut params = q.kept.clone();
        params.push(("PageSize".into(), q.page_size.to_string()));
        params.extend_from_slice(extra);
        format!("{base}?{}", crate::twilio::form_body(&params))
    };
    let next_page_uri = (more || scanned >= MAX_SCAN)
        .then(|| page.last().map(|r| r.id().to_string()))
        .flatten()
        .map(|last| {
            uri_with(&[
                ("Page".into(), (q.page + 1).to_string()),
                ("PageToken".into(), format!("PA{last}")),
            ])
        });
    let start = q.page * q.page_size;
    let messages: Vec<Value> = page
        .iter()
        .map(|r| match r {
            Record::Out(m) => message_json(&state, &account.sid, m),
            Record::In(m) => inbound_json(&state, &account.sid, m),
        })
        .collect();
    let body = json!({
        "messages": messages,
        "end": (start + messages.len()).saturating_sub(1),
        "first_page_uri": uri_with(&[("Page".into(), "0".into())]),
        "next_page_uri": next_page_uri,
        "page": q.page,
        "page_size": q.page_size,
        "previous_page_uri": Value::Null,
        "start": start,
        "uri": uri_with(&[("Page".into(), q.page.to_string())]),
    });
    Ok(axum::Json(body).into_response())
}
