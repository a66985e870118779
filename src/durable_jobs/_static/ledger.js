// The ledger page: lists jobs from /api/v1/jobs (failed ones by default), with their
// progress and result, retries failed ones and cancels unfinished ones.
//
// The admin token is kept in sessionStorage (this tab only, gone when it closes) and sent
// by fetch in an Authorization header, never in a cookie: a page of another site cannot
// make the browser send it, so the retry button needs no CSRF token.
// Values from the API are written with textContent only, never parsed as HTML.
"use strict";

const TOKEN_KEY = "ledger-admin-token";
const JOBS_API = "/api/v1/jobs";
const PAGE_SIZE = 50;

const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token");
const forgetButton = document.getElementById("forget-token");
const filterForm = document.getElementById("filter-form");
const stateSelect = document.getElementById("state");
const message = document.getElementById("message");
const table = document.getElementById("jobs");
const rows = table.querySelector("tbody");
const moreButton = document.getElementById("more");

let nextCursor = null;

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
  }
}

async function callApi(method, path) {
  const response = await fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`,
      Accept: "application/json",
    },
    credentials: "omit",
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, body && body.detail);
  }
  return body;
}

function showMessage(text) {
  message.className = "";
  message.textContent = text;
}

function showFailure(error) {
  message.className = "error";
  if (!(error instanceof ApiError)) {
    message.textContent = `The API could not be reached: ${error.message}`;
  } else if (error.status === 401 || error.status === 403) {
    // A refused token is forgotten, so a reload asks for it again.
    sessionStorage.removeItem(TOKEN_KEY);
    clearRows();
    message.textContent = `The admin token was refused (HTTP ${error.status}): enter the right one.`;
  } else {
    message.textContent = `The API answered ${error.status}: ${error.message}`;
  }
}

function clearRows() {
  rows.replaceChildren();
  table.hidden = true;
  moreButton.hidden = true;
  nextCursor = null;
}

function formatTime(iso) {
  if (!iso) {
    return "—";
  }
  return `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) {
    td.className = className;
  }
  return td;
}

const CANCELLABLE = ["queued", "retrying", "started"];

function formatProgress(progress) {
  if (!progress) {
    return "—";
  }
  const amount = progress.total === null ? `${progress.done}` : `${progress.done} of ${progress.total}`;
  return progress.note ? `${amount}: ${progress.note}` : amount;
}

function formatResult(result) {
  return result === null || result === undefined ? "—" : JSON.stringify(result);
}

function stateText(job) {
  return job.state === "started" && job.cancel_requested_at ? "started (cancelling)" : job.state;
}

function actionButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", () => onClick(button));
  return button;
}

function jobRow(job) {
  const tr = document.createElement("tr");
  tr.dataset.jobId = job.id;
  const actionCell = cell("", "action");
  tr.append(
    cell(job.id, "job-id"),
    cell(job.task_name, "task"),
    cell(stateText(job), "state"),
    cell(`${job.attempts} of ${job.max_attempts}`, "attempts"),
    cell(formatProgress(job.progress), "progress"),
    cell(formatResult(job.result), "result"),
    cell(job.last_error || "", "last-error"),
    cell(formatTime(job.finished_at), "finished"),
    actionCell,
  );
  if (job.state === "failed") {
    actionCell.append(actionButton("Retry", (button) => retry(job.id, button, tr)));
  }
  if (CANCELLABLE.includes(job.state) && !job.cancel_requested_at) {
    actionCell.append(actionButton("Cancel", (button) => cancel(job.id, button, tr)));
  }
  return tr;
}

async function cancel(jobId, button, tr) {
  button.disabled = true;
  try {
    const job = await callApi("POST", `${JOBS_API}/${encodeURIComponent(jobId)}/cancel`);
    tr.querySelector(".state").textContent = stateText(job);
    tr.querySelector(".finished").textContent = formatTime(job.finished_at);
    button.replaceWith(document.createTextNode("Cancel requested"));
    showMessage(
      job.state === "cancelled"
        ? `Job ${job.id} is cancelled.`
        : `Job ${job.id} is running; its worker is asked to stop it.`,
    );
  } catch (error) {
    button.disabled = false;
    showFailure(error);
  }
}

async function retry(jobId, button, tr) {
  button.disabled = true;
  try {
    const job = await callApi("POST", `${JOBS_API}/${encodeURIComponent(jobId)}/retry`);
    tr.querySelector(".state").textContent = job.state;
    tr.querySelector(".finished").textContent = formatTime(job.finished_at);
    button.replaceWith(document.createTextNode("Retried"));
    showMessage(`Job ${job.id} is ${job.state} again; its next run is attempt ${job.attempts + 1}.`);
  } catch (error) {
    button.disabled = false;
    showFailure(error);
  }
}

async function loadJobs(cursor) {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    clearRows();
    showMessage("Enter the admin token to see the ledger.");
    return;
  }
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (stateSelect.value) {
    params.set("state", stateSelect.value);
  }
  if (cursor) {
    params.set("cursor", cursor);
  }
  try {
    const page = await callApi("GET", `${JOBS_API}?${params}`);
    if (!cursor) {
      rows.replaceChildren();
    }
    rows.append(...page.items.map(jobRow));
    nextCursor = page.next_cursor;
    moreButton.hidden = !nextCursor;
    table.hidden = rows.children.length === 0;
    const which = stateSelect.value ? `${stateSelect.value} ` : "";
    const count = rows.children.length;
    showMessage(count ? `${count} ${which}job(s), newest first.` : `No ${which}jobs.`);
  } catch (error) {
    showFailure(error);
  }
}

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  tokenInput.value = "";
  loadJobs(null);
});

forgetButton.addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  clearRows();
  showMessage("Token forgotten. Enter the admin token to see the ledger.");
});

filterForm.addEventListener("submit", (event) => {
  event.preventDefault();
  loadJobs(null);
});

stateSelect.addEventListener("change", () => loadJobs(null));
moreButton.addEventListener("click", () => loadJobs(nextCursor));

loadJobs(null);
