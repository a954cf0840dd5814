//! Loading a program file (docs/program-file.md): the processor's REST objects, upserted by
//! token, all or nothing, every bad field reported by path.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::controls::{
    Association, AuthControl, AuthMode, ExemptMid, Includes, MerchantScope, VelocityControl, Window,
};
use crate::engine::Engine;
use crate::error::{EngineError, ErrorKind};
use crate::journal::{Effect, Entry, EntryKind, ProgramObject};
use crate::model::{
    Card, CardProduct, CardState, Holder, HolderKind, HolderStatus, MccGroup, Program,
};
use crate::money::parse_decimal;
use crate::rollback::Rollback;

/// The most objects one load applies. Decisions wait while a file is applied, at some
/// 10–30 µs an object: 10,000 keep that wait near a quarter of a second.
pub const LOAD_OBJECTS_MAX: usize = 10_000;

/// The collections of a program file, in the order they are applied.
pub const ORDER: [&str; 12] = [
    "businesses",
    "users",
    "mccgroups",
    "cardproducts",
    "cards",
    "velocitycontrols",
    "authcontrols",
    "authcontrolexemptmids",
    "gpaorders",
    "businesstransitions",
    "usertransitions",
    "cardtransitions",
];

/// Collects problems while objects are read.
struct Reader {
    problems: Vec<(String, String)>,
}

impl Reader {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        let problem = (path.to_owned(), message.into());
        // A field read twice (a token by the collection and by the object) is one problem.
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    fn text(&mut self, object: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match object.get(key) {
            Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
            None | Some(Value::Null) => None,
            Some(_) => {
                self.problem(&format!("{path}.{key}"), "must be a non-empty string");
                None
            }
        }
    }

    fn required(&mut self, object: &Map<String, Value>, path: &str, key: &str) -> String {
        let found = self.text(object, path, key);
        if found.is_none() && !object.contains_key(key) {
            self.problem(&format!("{path}.{key}"), "is missing");
        }
        found.unwrap_or_default()
    }

    fn flag(&mut self, object: &Map<String, Value>, path: &str, key: &str, default: bool) -> bool {
        match object.get(key) {
            Some(Value::Bool(value)) => *value,
            None | Some(Value::Null) => default,
            Some(_) => {
                self.problem(&format!("{path}.{key}"), "must be true or false");
                default
            }
        }
    }

    fn amount(&mut self, value: Option<&Value>, path: &str, exponent: u8) -> Option<i64> {
        let text = match value? {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Null => return None,
            _ => {
                self.problem(path, "must be a decimal amount");
                return None;
            }
        };
        match parse_decimal(&text, exponent, i64::MAX / 4) {
            Ok(money) => Some(money.minor()),
            Err(problem) => {
                self.problem(
                    path,
                    format!("amount {} {problem}", crate::error::quoted(&text)),
                );
                None
            }
        }
    }

    fn time(&mut self, object: &Map<String, Value>, path: &str, key: &str) -> Option<i64> {
        let text = self.text(object, path, key)?;
        let parsed = crate::message::parse_time_ms(&text);
        if parsed.is_none() {
            self.problem(&format!("{path}.{key}"), "is not an ISO 8601 time");
        }
        parsed
    }
}

impl Engine {
    /// Upserts a program file. All or nothing: every bad field is reported.
    pub fn load(&mut self, body: &[u8], now_ms: i64) -> Result<Vec<Entry>, EngineError> {
        if let Some(problem) = crate::message::nul_text(body) {
            return Err(program_error(vec![("$".to_owned(), problem.to_owned())]));
        }
        let file: Value = serde_json::from_slice(body).map_err(|error| {
            program_error(vec![("$".to_owned(), format!("malformed JSON: {error}"))])
        })?;
        let Value::Object(file) = file else {
            return Err(program_error(vec![(
                "$".to_owned(),
                "must be an object".to_owned(),
            )]));
        };

        let objects: usize = ORDER
            .iter()
            .filter_map(|key| file.get(*key).and_then(Value::as_array))
            .map(Vec::len)
            .sum();
        if objects > LOAD_OBJECTS_MAX {
            return Err(program_error(vec![(
                "$".to_owned(),
                format!("{objects} objects; one load takes at most {LOAD_OBJECTS_MAX}"),
            )]));
        }

        // Applied to the live state as it is read, so that later objects can name earlier
        // ones; a file with any problem is taken back whole.
        let mut rollback = Rollback::new(&self.state);
        let mut reader = Reader {
            problems: Vec::new(),
        };
        let mut entries = Vec::new();
        for key in file.keys() {
            // A misspelt collection ("velocity_controls") would otherwise load nothing and
            // look like success.
            if key != "program" && !ORDER.contains(&key.as_str()) {
                reader.problem(key, "unknown collection");
            }
        }
        if let Some(program) = file.get("program") {
            self.load_program(program, &mut reader, &mut entries, now_ms, &mut rollback);
        }
        for key in ORDER {
            let Some(items) = file.get(key) else { continue };
            let Value::Array(items) = items else {
                reader.problem(key, "must be an array");
                continue;
            };
            for (index, item) in items.iter().enumerate() {
                let path = format!("{key}[{index}]");
                let Value::Object(object) = item else {
                    reader.problem(&path, "must be an object");
                    continue;
                };
                let before = reader.problems.len();
                let made = self.read_object(key, object, &path, &mut reader);
                if reader.problems.len() == before {
                    self.emit(made, now_ms, &mut entries, &mut rollback);
                }
            }
        }

        if !reader.problems.is_empty() {
            rollback.undo(&mut self.state);
            self.refresh_program();
            return Err(program_error(reader.problems));
        }
        Ok(entries)
    }

    fn emit(
        &mut self,
        made: Vec<(String, &'static str, Vec<Effect>)>,
        at_ms: i64,
        out: &mut Vec<Entry>,
        rollback: &mut Rollback,
    ) {
        for (token, object, effects) in made {
            let unchanged = effects.iter().all(|effect| match effect {
                Effect::Put(put) => self.state.already_holds(put),
                _ => false,
            });
            if unchanged {
                continue;
            }
            let mut entry = Entry::new(self.last_seq() + 1, EntryKind::Program, at_ms, token);
            entry.object = Some(object.to_owned());
            entry.account = effects.iter().find_map(|effect| match effect {
                Effect::Posted { account, .. } => Some(account.clone()),
                _ => None,
            });
            entry.posted_delta_minor = crate::engine::deltas(&effects).0;
            entry.effects = effects;
            for effect in &entry.effects {
                rollback.keep(&self.state, effect);
            }
            self.commit_program(&entry);
            // Read models learn an account's currency from the first entry that moves it.
            entry.currency = entry
                .account
                .as_deref()
                .and_then(|token| self.state.accounts.get(token))
                .map(|account| account.currency.clone());
            out.push(entry);
        }
    }

    fn load_program(
        &mut self,
        value: &Value,
        reader: &mut Reader,
        out: &mut Vec<Entry>,
        at_ms: i64,
        rollback: &mut Rollback,
    ) {
        let Value::Object(object) = value else {
            reader.problem("program", "must be an object");
            return;
        };
        let current = self.state.program.clone();
        let token = reader
            .text(object, "program", "token")
            .unwrap_or(current.token);
        let currency = reader
            .text(object, "program", "currency_code")
            .unwrap_or(current.currency);
        let Some(found) = crate::currency::by_alpha(&currency) else {
            reader.problem(
                "program.currency_code",
                format!("unknown currency {currency:?}"),
            );
            return;
        };
        if currency != self.state.program.currency && !self.state.accounts.is_empty() {
            // Balances are minor units of the program currency: another exponent would
            // rescale every one of them.
            reader.problem(
                "program.currency_code",
                format!(
                    "cannot change from {} to {currency} once accounts exist",
                    self.state.program.currency
                ),
            );
            return;
        }
        let time_zone = reader
            .text(object, "program", "time_zone")
            .unwrap_or(current.time_zone);
        if time_zone.parse::<chrono_tz::Tz>().is_err() {
            reader.problem(
                "program.time_zone",
                format!("unknown time zone {time_zone:?}"),
            );
        }
        // Absent keeps the current limit, as absent keeps every other setting; an explicit
        // null lifts it.
        let max_amount_minor = match object.get("max_amount") {
            None => current.max_amount_minor,
            given => reader.amount(given, "program.max_amount", found.exponent),
        };
        let program = Program {
            token: token.clone(),
            currency,
            time_zone,
            max_amount_minor,
        };
        if reader.problems.is_empty() {
            let effects = vec![Effect::Put(ProgramObject::Program(program))];
            self.emit(vec![(token, "program", effects)], at_ms, out, rollback);
        }
    }

    fn read_object(
        &self,
        key: &str,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> Vec<(String, &'static str, Vec<Effect>)> {
        let token = reader.required(object, path, "token");
        let made = match key {
            "businesses" => self.read_holder(object, path, reader, HolderKind::Business),
            "users" => self.read_holder(object, path, reader, HolderKind::User),
            "mccgroups" => {
                read_mcc_group(object, path, reader).map(|g| vec![put(ProgramObject::MccGroup(g))])
            }
            "cardproducts" => {
                let name = reader.text(object, path, "name").unwrap_or_default();
                let product = CardProduct {
                    token: token.clone(),
                    name,
                };
                Some(vec![put(ProgramObject::CardProduct(product))])
            }
            "cards" => self
                .read_card(object, path, reader)
                .map(|c| vec![put(ProgramObject::Card(c))]),
            "velocitycontrols" => self.read_velocity(object, path, reader),
            "authcontrols" => self.read_auth_control(object, path, reader),
            "authcontrolexemptmids" => self.read_exempt(object, path, reader),
            "gpaorders" => self.read_gpa_order(object, path, reader, &token),
            _ => self.read_transition(key, object, path, reader),
        };
        let object_name = match key {
            "businesses" => "business",
            "users" => "user",
            "mccgroups" => "mccgroup",
            "cardproducts" => "cardproduct",
            "cards" => "card",
            "velocitycontrols" => "velocitycontrol",
            "authcontrols" => "authcontrol",
            "authcontrolexemptmids" => "authcontrolexemptmid",
            "gpaorders" => "gpaorder",
            "businesstransitions" => "businesstransition",
            "usertransitions" => "usertransition",
            _ => "cardtransition",
        };
        made.map(|effects| vec![(token, object_name, effects)])
            .unwrap_or_default()
    }

    fn read_holder(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
        kind: HolderKind,
    ) -> Option<Vec<Effect>> {
        let token = reader.required(object, path, "token");
        // An upsert that does not name a status keeps the current one: re-running the file
        // that created a holder must not reopen what a transition closed.
        let current = self.state.holders.get(&token).map(|holder| holder.status);
        let status = read_status(
            reader,
            object.get("status"),
            &format!("{path}.status"),
            current,
        )?;
        let parent_token = reader.text(object, path, "parent_token");
        let uses_parent_account = reader.flag(object, path, "uses_parent_account", false);
        let parent = self.parent_of(
            &token,
            parent_token.as_deref(),
            uses_parent_account,
            path,
            reader,
        )?;
        let account_token = match parent {
            Some(parent) if uses_parent_account => parent.account_token.clone(),
            _ => token.clone(),
        };
        let exponent = self.exponent;
        let credit_line = reader.amount(
            object.get("credit_line"),
            &format!("{path}.credit_line"),
            exponent,
        );
        let holder = Holder {
            token: token.clone(),
            kind,
            status,
            parent_token,
            uses_parent_account,
            account_token,
        };
        let mut effects = vec![put(ProgramObject::Holder(holder))];
        if !uses_parent_account {
            let existing = self
                .state
                .accounts
                .get(&token)
                .map_or(0, |a| a.credit_line_minor);
            effects.push(put(ProgramObject::Account {
                token,
                currency: self.state.program.currency.clone(),
                credit_line_minor: credit_line.unwrap_or(existing),
            }));
        }
        Some(effects)
    }

    /// The parent a holder names: None after reporting an unknown parent, a cycle, or an
    /// account drawn from a parent that is not named.
    fn parent_of(
        &self,
        token: &str,
        parent_token: Option<&str>,
        uses_parent_account: bool,
        path: &str,
        reader: &mut Reader,
    ) -> Option<Option<&Holder>> {
        let parent = parent_token.and_then(|parent| self.state.holders.get(parent));
        let problem = if parent_token.is_some() && parent.is_none() {
            Some(("parent_token", "unknown parent"))
        } else if parent.is_some_and(|parent| self.descends_from(parent, token)) {
            Some(("parent_token", "would make the holder its own ancestor"))
        } else if uses_parent_account && parent.is_none() {
            Some(("uses_parent_account", "needs a parent_token"))
        } else {
            None
        };
        match problem {
            Some((field, message)) => {
                reader.problem(&format!("{path}.{field}"), message);
                None
            }
            None => Some(parent),
        }
    }

    /// Amounts are in the program currency: an object that names another is refused, not
    /// read as if it were in this one.
    fn check_currency(&self, object: &Map<String, Value>, path: &str, reader: &mut Reader) {
        if let Some(currency) = reader.text(object, path, "currency_code") {
            if currency != self.state.program.currency {
                reader.problem(
                    &format!("{path}.currency_code"),
                    format!("{currency} is not the program currency"),
                );
            }
        }
    }

    /// Whether `token` is `holder` or one of its parents.
    fn descends_from(&self, holder: &Holder, token: &str) -> bool {
        let mut current = Some(holder);
        // A chain is never longer than the holders there are; the bound is for the loop.
        for _ in 0..=self.state.holders.len() {
            let Some(holder) = current else { return false };
            if holder.token == token {
                return true;
            }
            current = holder
                .parent_token
                .as_deref()
                .and_then(|parent| self.state.holders.get(parent));
        }
        true
    }

    fn read_card(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> Option<Card> {
        let token = reader.required(object, path, "token");
        let user_token = reader.required(object, path, "user_token");
        if !user_token.is_empty() && !self.state.holders.contains_key(&user_token) {
            reader.problem(&format!("{path}.user_token"), "unknown user");
        }
        let card_product_token = reader
            .text(object, path, "card_product_token")
            .unwrap_or_default();
        let known_product = self.state.card_products.contains_key(&card_product_token);
        if !card_product_token.is_empty() && !known_product {
            reader.problem(
                &format!("{path}.card_product_token"),
                "unknown card product",
            );
        }
        // As for holders, an absent state keeps the current one, and TERMINATED is final.
        let current = self.state.cards.get(&token).map(|card| card.state);
        let state_path = format!("{path}.state");
        let state = read_card_state(reader, object.get("state"), &state_path, current)?;
        let expires_at_ms = match reader.text(object, path, "expiration") {
            Some(mmyy) => Some(expiry_ms(&mmyy).or_else(|| {
                reader.problem(&format!("{path}.expiration"), "must be MMYY");
                None
            })?),
            None => None,
        };
        let last_four = reader.text(object, path, "last_four");
        Some(Card {
            token,
            user_token,
            card_product_token,
            state,
            expires_at_ms,
            last_four,
        })
    }

    fn read_association(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> Association {
        let Some(Value::Object(association)) = object.get("association") else {
            return Association::Program;
        };
        let path = format!("{path}.association");
        if let Some(token) = reader
            .text(association, &path, "user_token")
            .or_else(|| reader.text(association, &path, "business_token"))
        {
            if !self.state.holders.contains_key(&token) {
                reader.problem(&format!("{path}.user_token"), "unknown user");
            }
            return Association::User(token);
        }
        if let Some(token) = reader.text(association, &path, "card_product_token") {
            if !self.state.card_products.contains_key(&token) {
                reader.problem(
                    &format!("{path}.card_product_token"),
                    "unknown card product",
                );
            }
            return Association::CardProduct(token);
        }
        if let Some(token) = reader.text(association, &path, "card_token") {
            if !self.state.cards.contains_key(&token) {
                reader.problem(&format!("{path}.card_token"), "unknown card");
            }
            return Association::Card(token);
        }
        Association::Program
    }

    fn read_scope(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> MerchantScope {
        let Some(Value::Object(scope)) = object.get("merchant_scope") else {
            return MerchantScope::Any;
        };
        let path = format!("{path}.merchant_scope");
        if let Some(mid) = reader.text(scope, &path, "mid") {
            return MerchantScope::Mid(mid);
        }
        if scope.get("mcc").is_some_and(|v| !v.is_null()) {
            return match scope.get("mcc") {
                Some(Value::String(code))
                    if code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    MerchantScope::Mcc(code.parse().unwrap_or_default())
                }
                _ => {
                    reader.problem(&format!("{path}.mcc"), "must be a string of four digits");
                    MerchantScope::Any
                }
            };
        }
        if let Some(group) = reader.text(scope, &path, "mcc_group") {
            if !self.state.mcc_groups.contains_key(&group) {
                reader.problem(&format!("{path}.mcc_group"), "unknown MCC group");
            }
            return MerchantScope::MccGroup(group);
        }
        if let Some(country) = reader.text(scope, &path, "country") {
            return MerchantScope::Country(country.to_ascii_uppercase());
        }
        MerchantScope::Any
    }

    fn read_velocity(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> Option<Vec<Effect>> {
        let token = reader.required(object, path, "token");
        let name = reader
            .text(object, path, "name")
            .unwrap_or_else(|| token.clone());
        let association = self.read_association(object, path, reader);
        let scope = self.read_scope(object, path, reader);
        let usage_limit = match object.get("usage_limit") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n >= -1) => {
                n.as_i64().filter(|n| *n >= 0)
            }
            Some(_) => {
                reader.problem(
                    &format!("{path}.usage_limit"),
                    "must be an integer, -1 for none",
                );
                None
            }
        };
        let amount_limit_minor = reader.amount(
            object.get("amount_limit"),
            &format!("{path}.amount_limit"),
            self.exponent,
        );
        self.check_currency(object, path, reader);
        let window = match reader.text(object, path, "velocity_window").as_deref() {
            Some("TRANSACTION") => Window::Transaction,
            Some("DAY") => Window::Day,
            Some("WEEK") => Window::Week,
            Some("MONTH") => Window::Month,
            Some("LIFETIME") | None => Window::Lifetime,
            Some(other) => {
                reader.problem(
                    &format!("{path}.velocity_window"),
                    format!("unknown window {other:?}"),
                );
                return None;
            }
        };
        let includes = Includes {
            purchases: reader.flag(object, path, "include_purchases", true),
            withdrawals: reader.flag(object, path, "include_withdrawals", true),
            transfers: reader.flag(object, path, "include_transfers", true),
            cashback: reader.flag(object, path, "include_cashback", true),
            credits: reader.flag(object, path, "include_credits", false),
        };
        let approvals_only = reader.flag(object, path, "approvals_only", true);
        let active = reader.flag(object, path, "active", true);
        let control = VelocityControl {
            token,
            name,
            association,
            scope,
            usage_limit,
            amount_limit_minor,
            window,
            includes,
            approvals_only,
            active,
        };
        Some(vec![put(ProgramObject::VelocityControl(control))])
    }

    fn read_auth_control(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> Option<Vec<Effect>> {
        let token = reader.required(object, path, "token");
        let name = reader
            .text(object, path, "name")
            .unwrap_or_else(|| token.clone());
        let association = self.read_association(object, path, reader);
        let scope = self.read_scope(object, path, reader);
        let mode = match reader.text(object, path, "mode").as_deref() {
            None | Some("BLOCK") => AuthMode::Block,
            Some("ALLOW") => AuthMode::Allow,
            Some(other) => {
                reader.problem(&format!("{path}.mode"), format!("unknown mode {other:?}"));
                return None;
            }
        };
        let control = AuthControl {
            token,
            name,
            association,
            scope,
            start_ms: reader.time(object, path, "start_time"),
            end_ms: reader.time(object, path, "end_time"),
            active: reader.flag(object, path, "active", true),
            mode,
        };
        Some(vec![put(ProgramObject::AuthControl(control))])
    }

    fn read_exempt(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> Option<Vec<Effect>> {
        let token = reader.required(object, path, "token");
        let exempt = ExemptMid {
            name: reader
                .text(object, path, "name")
                .unwrap_or_else(|| token.clone()),
            association: self.read_association(object, path, reader),
            mid: reader.required(object, path, "mid"),
            start_ms: reader.time(object, path, "start_time"),
            end_ms: reader.time(object, path, "end_time"),
            active: reader.flag(object, path, "active", true),
            token,
        };
        Some(vec![put(ProgramObject::ExemptMid(exempt))])
    }

    fn read_gpa_order(
        &self,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
        token: &str,
    ) -> Option<Vec<Effect>> {
        let holder = reader
            .text(object, path, "user_token")
            .or_else(|| reader.text(object, path, "business_token"));
        let Some(holder) = holder.and_then(|token| self.state.holders.get(&token)) else {
            reader.problem(&format!("{path}.user_token"), "unknown user or business");
            return None;
        };
        self.check_currency(object, path, reader);
        let amount_field = format!("{path}.amount");
        let Some(amount) = reader.amount(object.get("amount"), &amount_field, self.exponent) else {
            if matches!(object.get("amount"), None | Some(Value::Null)) {
                reader.problem(&amount_field, "is missing");
            }
            return None;
        };
        if amount == 0 {
            reader.problem(&amount_field, "must be more than zero");
            return None;
        }
        let account = &holder.account_token;
        if let Some((funded, funded_minor)) = self.state.gpa_orders.get(token) {
            // A repeat of an applied order is harmless; the same token for another order is
            // a mistake that must not pass as "already applied".
            if (funded, *funded_minor) != (account, amount) && !funded.is_empty() {
                reader.problem(
                    &format!("{path}.token"),
                    "already used by a GPA order with another account or amount",
                );
            }
            return None;
        }
        Some(vec![
            Effect::GpaOrder {
                token: token.to_owned(),
                account: account.clone(),
                amount_minor: amount,
            },
            Effect::Posted {
                account: holder.account_token.clone(),
                delta_minor: amount,
            },
        ])
    }

    fn read_transition(
        &self,
        key: &str,
        object: &Map<String, Value>,
        path: &str,
        reader: &mut Reader,
    ) -> Option<Vec<Effect>> {
        if key == "cardtransitions" {
            let card_token = reader.required(object, path, "card_token");
            let Some(card) = self.state.cards.get(&card_token) else {
                reader.problem(&format!("{path}.card_token"), "unknown card");
                return None;
            };
            let state_path = format!("{path}.state");
            let state =
                read_card_state(reader, object.get("state"), &state_path, Some(card.state))?;
            return Some(vec![put(ProgramObject::Card(Card {
                state,
                ..card.clone()
            }))]);
        }
        let field = if key == "usertransitions" {
            "user_token"
        } else {
            "business_token"
        };
        let holder_token = reader.required(object, path, field);
        let Some(holder) = self.state.holders.get(&holder_token) else {
            reader.problem(&format!("{path}.{field}"), "unknown account holder");
            return None;
        };
        let status_path = format!("{path}.status");
        let status = read_status(
            reader,
            object.get("status"),
            &status_path,
            Some(holder.status),
        )?;
        Some(vec![put(ProgramObject::Holder(Holder {
            status,
            ..holder.clone()
        }))])
    }
}

fn put(object: ProgramObject) -> Effect {
    Effect::Put(object)
}

fn program_error(problems: Vec<(String, String)>) -> EngineError {
    let (field, first) = problems.first().cloned().unwrap_or_default();
    let message = format!(
        "{} problem(s) in the program file, first: {first}",
        problems.len()
    );
    EngineError {
        kind: ErrorKind::Program,
        field,
        message,
        problems,
    }
}

/// A holder's status as given, else `current`, else ACTIVE.
fn read_status(
    reader: &mut Reader,
    value: Option<&Value>,
    path: &str,
    current: Option<HolderStatus>,
) -> Option<HolderStatus> {
    let status = match value.and_then(Value::as_str) {
        None => current.unwrap_or(HolderStatus::Active),
        Some("UNVERIFIED") => HolderStatus::Unverified,
        Some("LIMITED") => HolderStatus::Limited,
        Some("ACTIVE") => HolderStatus::Active,
        Some("SUSPENDED") => HolderStatus::Suspended,
        Some("CLOSED") => HolderStatus::Closed,
        Some(other) => {
            reader.problem(path, format!("unknown status {other:?}"));
            return None;
        }
    };
    Some(status)
}

/// A card's state as given, else `current`, else ACTIVE; None after a problem, among them
/// leaving TERMINATED, which is final.
fn read_card_state(
    reader: &mut Reader,
    value: Option<&Value>,
    path: &str,
    current: Option<CardState>,
) -> Option<CardState> {
    let state = match value.and_then(Value::as_str) {
        None => current.unwrap_or(CardState::Active),
        Some("ACTIVE") => CardState::Active,
        Some("UNACTIVATED") => CardState::Unactivated,
        Some("SUSPENDED") => CardState::Suspended,
        Some("TERMINATED") => CardState::Terminated,
        Some(other) => {
            reader.problem(path, format!("unknown state {other:?}"));
            return None;
        }
    };
    if current == Some(CardState::Terminated) && state != CardState::Terminated {
        reader.problem(path, "a TERMINATED card stays terminated");
        return None;
    }
    Some(state)
}

/// The first instant after a card's MMYY expiry month, UTC.
fn expiry_ms(mmyy: &str) -> Option<i64> {
    if mmyy.len() != 4 || !mmyy.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month: u32 = mmyy[..2].parse().ok()?;
    let year: i32 = 2000 + mmyy[2..].parse::<i32>().ok()?;
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    if !(1..=12).contains(&month) {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(next_year, next_month, 1)?;
    Some(first.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

fn read_mcc_group(
    object: &Map<String, Value>,
    path: &str,
    reader: &mut Reader,
) -> Option<MccGroup> {
    let token = reader.required(object, path, "token");
    let name = reader
        .text(object, path, "name")
        .unwrap_or_else(|| token.clone());
    let mut ranges = Vec::new();
    let codes = object
        .get("mccs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (index, code) in codes.iter().enumerate() {
        let range = code.as_str().and_then(parse_mcc_range);
        match range {
            Some(range) => ranges.push(range),
            None if code
                .as_str()
                .and_then(|text| parse_mcc_range(&reversed(text)))
                .is_some() =>
            {
                reader.problem(
                    &format!("{path}.mccs[{index}]"),
                    "range ends before it starts",
                );
            }
            None => reader.problem(
                &format!("{path}.mccs[{index}]"),
                "must be \"NNNN\" or \"NNNN-NNNN\"",
            ),
        }
    }
    let days = object
        .get("config")
        .and_then(|config| config.get("authorization_controls"))
        .and_then(|controls| controls.get("hold_expiration_days"))
        .and_then(Value::as_u64)
        .and_then(|days| u32::try_from(days).ok());
    Some(MccGroup {
        token,
        name,
        ranges,
        hold_expiration_days: days,
    })
}

/// "HIGH-LOW" as "LOW-HIGH", to tell a reversed range from a malformed one.
fn reversed(text: &str) -> String {
    match text.split_once('-') {
        Some((low, high)) => format!("{high}-{low}"),
        None => String::new(),
    }
}

fn parse_mcc_range(text: &str) -> Option<(u16, u16)> {
    let code = |part: &str| {
        (part.len() == 4 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    match text.split_once('-') {
        Some((low, high)) => Some((code(low)?, code(high)?)).filter(|(low, high)| low <= high),
        None => code(text).map(|mcc| (mcc, mcc)),
    }
}
