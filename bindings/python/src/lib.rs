//! `pyjit._engine`: the Python face of `jit_core`.
//!
//! Inputs are converted to Rust values while the GIL is held (bytes are borrowed, not
//! copied), then the GIL is released for the engine's work and for serializing the journal
//! entry. Engine refusals become `EngineError` subclasses of `ValueError` carrying `.field`
//! (and `.problems` for a program file); a decline is a normal `Outcome`.

use jit_core::{EngineError as CoreError, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// The engine makes a few dozen small allocations per decision; mimalloc serves them in a
/// fraction of glibc malloc's instructions (measured with callgrind on `engine_bench`).
/// Python objects still come from Python's own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    _engine,
    EngineError,
    PyValueError,
    "Input the engine refuses."
);
create_exception!(
    _engine,
    MessageError,
    EngineError,
    "A JIT message that cannot be decided."
);
create_exception!(
    _engine,
    TokenConflict,
    EngineError,
    "A token reused with another body."
);
create_exception!(
    _engine,
    ProgramError,
    EngineError,
    "A program file with bad objects."
);
create_exception!(
    _engine,
    JournalError,
    EngineError,
    "An entry that does not fit."
);

fn to_py(py: Python<'_>, error: CoreError) -> PyErr {
    let text = error.to_string();
    let raised = match error.kind {
        ErrorKind::Message => MessageError::new_err(text),
        ErrorKind::TokenConflict => TokenConflict::new_err(text),
        ErrorKind::Program => ProgramError::new_err(text),
        ErrorKind::Journal => JournalError::new_err(text),
        ErrorKind::UnknownToken => return PyKeyError::new_err(error.message),
    };
    let value = raised.value(py);
    let _ = value.setattr("field", error.field);
    if error.kind == ErrorKind::Program {
        let _ = value.setattr("problems", error.problems);
    }
    raised
}

/// One journal record.
#[pyclass(module = "pyjit._engine", name = "Entry", frozen)]
struct PyEntry {
    entry: jit_core::Entry,
    data: Vec<u8>,
}

impl PyEntry {
    fn new(entry: jit_core::Entry) -> PyEntry {
        let data = entry.to_json();
        PyEntry { entry, data }
    }
}

#[pymethods]
impl PyEntry {
    #[getter]
    fn seq(&self) -> u64 {
        self.entry.seq
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.entry.kind.as_str()
    }

    #[getter]
    fn token(&self) -> &str {
        &self.entry.token
    }

    #[getter]
    fn account_token(&self) -> Option<&str> {
        self.entry.account.as_deref()
    }

    #[getter]
    fn posted_delta_minor(&self) -> i64 {
        self.entry.posted_delta_minor
    }

    #[getter]
    fn held_delta_minor(&self) -> i64 {
        self.entry.held_delta_minor
    }

    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    fn __repr__(&self) -> String {
        format!(
            "Entry(seq={}, kind={:?}, token={:?})",
            self.entry.seq,
            self.kind(),
            self.entry.token
        )
    }
}

/// The answer to one JIT message.
#[pyclass(module = "pyjit._engine", name = "Outcome", frozen)]
struct PyOutcome {
    outcome: jit_core::Outcome,
    entry: Option<Py<PyEntry>>,
}

#[pymethods]
impl PyOutcome {
    #[getter]
    fn status(&self) -> u16 {
        self.outcome.status
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.outcome.body.as_bytes())
    }

    #[getter]
    fn token(&self) -> &str {
        &self.outcome.token
    }

    #[getter]
    fn method(&self) -> &str {
        &self.outcome.method
    }

    #[getter]
    fn approved(&self) -> bool {
        self.outcome.approved
    }

    #[getter]
    fn decline_reason(&self) -> Option<&str> {
        self.outcome.decline_reason.as_deref()
    }

    #[getter]
    fn rule_id(&self) -> Option<&str> {
        self.outcome.rule_id.as_deref()
    }

    #[getter]
    fn rule_name(&self) -> Option<&str> {
        self.outcome.rule_name.as_deref()
    }

    #[getter]
    fn replayed(&self) -> bool {
        self.outcome.replayed
    }

    #[getter]
    fn entry(&self, py: Python<'_>) -> Option<Py<PyEntry>> {
        self.entry.as_ref().map(|entry| entry.clone_ref(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "Outcome(status={}, token={:?}, decline_reason={:?}, replayed={})",
            self.outcome.status,
            self.outcome.token,
            self.outcome.decline_reason,
            self.outcome.replayed
        )
    }
}

/// A read-only view of one account's balances.
#[pyclass(module = "pyjit._engine", name = "Account", frozen)]
struct PyAccount {
    account: jit_core::model::Account,
}

#[pymethods]
impl PyAccount {
    #[getter]
    fn token(&self) -> &str {
        &self.account.token
    }

    #[getter]
    fn currency(&self) -> &str {
        &self.account.currency
    }

    #[getter]
    fn posted_minor(&self) -> i64 {
        self.account.posted_minor
    }

    #[getter]
    fn held_minor(&self) -> i64 {
        self.account.held_minor
    }

    #[getter]
    fn credit_line_minor(&self) -> i64 {
        self.account.credit_line_minor
    }

    #[getter]
    fn available_minor(&self) -> i64 {
        self.account.available_minor()
    }

    fn __repr__(&self) -> String {
        format!(
            "Account(token={:?}, posted_minor={}, held_minor={})",
            self.account.token, self.account.posted_minor, self.account.held_minor
        )
    }
}

/// A copy of an engine at one moment, to be written out while the engine goes on deciding:
/// copying shares holds and answers, so it takes a fraction of the time writing takes.
#[pyclass(module = "pyjit._engine", name = "FrozenEngine", frozen)]
struct PyFrozenEngine {
    engine: jit_core::Engine,
}

#[pymethods]
impl PyFrozenEngine {
    #[getter]
    fn last_seq(&self) -> u64 {
        self.engine.last_seq()
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let engine = &self.engine;
        let bytes = py.allow_threads(|| engine.snapshot());
        PyBytes::new(py, &bytes)
    }
}

/// The decision engine.
#[pyclass(module = "pyjit._engine", name = "Engine")]
struct PyEngine {
    engine: jit_core::Engine,
}

fn wrap_outcome(
    py: Python<'_>,
    result: (jit_core::Outcome, Option<PyEntry>),
) -> PyResult<PyOutcome> {
    let (outcome, entry) = result;
    let entry = entry.map(|entry| Py::new(py, entry)).transpose()?;
    Ok(PyOutcome { outcome, entry })
}

fn split(mut outcome: jit_core::Outcome) -> (jit_core::Outcome, Option<PyEntry>) {
    let entry = outcome.entry.take().map(PyEntry::new);
    (outcome, entry)
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (max_amount_minor = 10_000_000_000))]
    fn new(max_amount_minor: i64) -> PyEngine {
        PyEngine {
            engine: jit_core::Engine::new(max_amount_minor),
        }
    }

    #[getter]
    fn last_seq(&self) -> u64 {
        self.engine.last_seq()
    }

    fn decide(&mut self, py: Python<'_>, body: &[u8], now_ms: i64) -> PyResult<PyOutcome> {
        let engine = &mut self.engine;
        let result = py.allow_threads(|| engine.decide(body, now_ms).map(split));
        wrap_outcome(py, result.map_err(|error| to_py(py, error))?)
    }

    fn void(&mut self, py: Python<'_>, token: &str, now_ms: i64) -> PyResult<PyOutcome> {
        let engine = &mut self.engine;
        let result = py.allow_threads(|| engine.void(token, now_ms).map(split));
        wrap_outcome(py, result.map_err(|error| to_py(py, error))?)
    }

    fn load(&mut self, py: Python<'_>, body: &[u8], now_ms: i64) -> PyResult<Vec<PyEntry>> {
        let engine = &mut self.engine;
        let result = py.allow_threads(|| {
            engine
                .load(body, now_ms)
                .map(|entries| entries.into_iter().map(PyEntry::new).collect())
        });
        result.map_err(|error| to_py(py, error))
    }

    fn adopt_void(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<Option<PyEntry>> {
        let engine = &mut self.engine;
        let result = py.allow_threads(|| engine.adopt_void(data).map(|e| e.map(PyEntry::new)));
        result.map_err(|error| to_py(py, error))
    }

    fn expire_holds(&mut self, py: Python<'_>, now_ms: i64) -> Vec<PyEntry> {
        let engine = &mut self.engine;
        py.allow_threads(|| {
            engine
                .expire_holds(now_ms)
                .into_iter()
                .map(PyEntry::new)
                .collect()
        })
    }

    fn apply(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let engine = &mut self.engine;
        py.allow_threads(|| engine.apply(data))
            .map_err(|error| to_py(py, error))
    }

    fn apply_many(&mut self, py: Python<'_>, entries: &Bound<'_, PyList>) -> PyResult<usize> {
        let held: Vec<Bound<'_, PyBytes>> = entries
            .iter()
            .map(|item| item.downcast_into::<PyBytes>())
            .collect::<Result<_, _>>()?;
        let slices: Vec<&[u8]> = held.iter().map(|bytes| bytes.as_bytes()).collect();
        let engine = &mut self.engine;
        let result = py.allow_threads(|| {
            for (applied, data) in slices.iter().enumerate() {
                engine.apply(data).map_err(|error| (applied, error))?;
            }
            Ok(slices.len())
        });
        result.map_err(|(_, error)| to_py(py, error))
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let engine = &self.engine;
        let bytes = py.allow_threads(|| engine.snapshot());
        PyBytes::new(py, &bytes)
    }

    fn frozen(&self, py: Python<'_>) -> PyFrozenEngine {
        let engine = &self.engine;
        PyFrozenEngine {
            engine: py.allow_threads(|| engine.clone()),
        }
    }

    #[staticmethod]
    fn restore(py: Python<'_>, snapshot: &[u8]) -> PyResult<PyEngine> {
        let engine = py.allow_threads(|| jit_core::Engine::restore(snapshot));
        engine
            .map(|engine| PyEngine { engine })
            .map_err(|error| to_py(py, error))
    }

    fn account(&self, token: &str) -> Option<PyAccount> {
        self.engine.account(token).map(|account| PyAccount {
            account: account.clone(),
        })
    }

    fn accounts(&self) -> Vec<PyAccount> {
        let accounts = self.engine.accounts().into_iter();
        accounts
            .map(|account| PyAccount {
                account: account.clone(),
            })
            .collect()
    }

    fn card<'py>(&self, py: Python<'py>, token: &str) -> Option<Bound<'py, PyBytes>> {
        let json = self.engine.card_json(token)?;
        Some(PyBytes::new(py, &json))
    }

    fn holder<'py>(&self, py: Python<'py>, token: &str) -> Option<Bound<'py, PyBytes>> {
        let json = self.engine.holder_json(token)?;
        Some(PyBytes::new(py, &json))
    }

    fn holds<'py>(&self, py: Python<'py>, account_token: &str) -> Bound<'py, PyBytes> {
        let engine = &self.engine;
        let json = py.allow_threads(|| engine.holds_json(account_token));
        PyBytes::new(py, &json)
    }

    fn controls<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.engine.controls_json())
    }

    fn velocity_available<'py>(
        &self,
        py: Python<'py>,
        holder_token: &str,
        now_ms: i64,
    ) -> Bound<'py, PyBytes> {
        let engine = &self.engine;
        let json = py.allow_threads(|| engine.velocity_available_json(holder_token, now_ms));
        PyBytes::new(py, &json)
    }

    fn state_digest(&self, py: Python<'_>) -> String {
        let engine = &self.engine;
        py.allow_threads(|| engine.state_digest())
    }
}

#[pymodule]
fn _engine(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add(
        "PROGRAM_COLLECTIONS",
        jit_core::PROGRAM_COLLECTIONS.to_vec(),
    )?;
    module.add("PROGRAM_OBJECTS_MAX", jit_core::PROGRAM_OBJECTS_MAX)?;
    module.add_class::<PyEngine>()?;
    module.add_class::<PyFrozenEngine>()?;
    module.add_class::<PyOutcome>()?;
    module.add_class::<PyEntry>()?;
    module.add_class::<PyAccount>()?;
    let errors = [
        py.get_type::<EngineError>(),
        py.get_type::<MessageError>(),
        py.get_type::<TokenConflict>(),
        py.get_type::<ProgramError>(),
        py.get_type::<JournalError>(),
    ];
    for error in errors {
        error.setattr("__module__", "pyjit._engine")?;
        module.add(error.name()?, &error)?;
    }
    py.get_type::<EngineError>().setattr("field", "")?;
    py.get_type::<ProgramError>()
        .setattr("problems", PyList::empty(py))?;
    Ok(())
}
