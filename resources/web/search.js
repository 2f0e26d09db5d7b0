"use strict";
// The search page: asks for the token once (the browser keeps it), searches through /v1/search,
// lights up the matched words through /v1/highlight, and opens hits through /v1/open.
// Text from the index only ever becomes text nodes, never markup.

const TOKEN_KEY = "desktop-search-token";
const RESULTS = 20;
const $ = (id) => document.getElementById(id);

class NeedsToken extends Error {}

function askForToken(reason) {
  $("token-form").hidden = false;
  $("token").focus();
  showMessage(reason || "Enter the token to search.", Boolean(reason));
}

function showMessage(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

async function call(path, body) {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) {
    askForToken();
    throw new NeedsToken();
  }
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    localStorage.removeItem(TOKEN_KEY);
    askForToken("The server refused that token: enter the one it printed at start.");
    throw new NeedsToken();
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  return data;
}

async function showStatus() {
  const status = await call("/v1/status");
  const label = status.label ? ` (${status.label})` : "";
  $("status").textContent = `${status.files} files, ${status.chunks} passages · model ${baseName(status.model)}${label}`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function baseName(path) {
  return path.split(/[\\/]/).pop();
}

function folderOf(path) {
  return path.slice(0, path.length - baseName(path).length - 1) || path;
}

function placeOf(hit) {
  return hit.unit === "image" ? "image" : `${hit.unit} ${hit.page}`;
}

function snippetNode(segments) {
  const node = element("div", "snippet");
  segments.forEach((piece, position) => {
    node.append(position % 2 ? element("mark", "", piece) : document.createTextNode(piece));
  });
  return node;
}

function linkButton(label, action) {
  const button = element("button", "", label);
  button.type = "button";
  button.addEventListener("click", action);
  return button;
}

async function openHit(hit, reveal) {
  try {
    const opened = await call("/v1/open", { path: hit.path, page: hit.page, reveal });
    showMessage(`${baseName(hit.path)}: ${opened.action}${opened.note ? ` (${opened.note})` : ""}`);
  } catch (error) {
    if (!(error instanceof NeedsToken)) showMessage(`Cannot open ${baseName(hit.path)}: ${error.message}`, true);
  }
}

function hitNode(hit, segments) {
  const item = element("li");
  const title = element("div");
  title.append(element("span", "title", baseName(hit.path)));
  const more = hit.more.length ? ` · +${hit.more.length} more in this file` : "";
  title.append(element("span", "place", ` · ${placeOf(hit)}${hit.ocr ? " · text read by OCR" : ""}${more}`));
  item.append(title, element("div", "folder", folderOf(hit.path)));
  if (hit.duplicates && hit.duplicates.length) {
    // Copies of this document elsewhere: one hit names them, folded until asked for.
    const copies = element("details", "copies");
    const count = hit.duplicates_total;
    copies.append(element("summary", null, `also in ${count === 1 ? "1 other place" : `${count} places`}`));
    for (const other of hit.duplicates) copies.append(element("div", "folder", other));
    if (count > hit.duplicates.length) copies.append(element("div", "folder", `and ${count - hit.duplicates.length} more`));
    item.append(copies);
  }
  item.append(snippetNode(segments));
  if (!hit.terms.length) {
    item.append(element("div", "by-meaning", "found by meaning: none of the query's words are in this passage"));
  }
  const links = element("div", "links");
  links.append(linkButton(`Open at ${placeOf(hit)}`, () => openHit(hit, false)),
               linkButton("Show in folder", () => openHit(hit, true)),
               element("span", "score", `score ${hit.score.toFixed(3)}`));
  item.append(links);
  return item;
}

async function search() {
  const query = $("query").value.trim();
  if (!query) return;
  showMessage("Searching…");
  try {
    const result = await call("/v1/search", { query, mode: $("mode").value, k: RESULTS });
    const terms = [...new Set(result.hits.flatMap((hit) => hit.terms))];
    const marked = result.hits.length
      ? (await call("/v1/highlight", { texts: result.hits.map((hit) => hit.snippet), terms })).segments
      : [];
    $("results").replaceChildren(...result.hits.map((hit, i) => hitNode(hit, marked[i])));
    const channels = result.channels.length ? `: ${result.channels.join(", ")}` : "";
    const summary = `${result.hits.length} results for “${result.query}” (${result.mode}${channels}; ` +
      `${Math.round(result.took_ms)} ms)`;
    showMessage(result.note ? `${summary}. ${result.note}` : summary);
  } catch (error) {
    if (!(error instanceof NeedsToken)) showMessage(`Search failed: ${error.message}`, true);
  }
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  $("token-form").hidden = true;
  showMessage("");
  try {
    await showStatus();
    if ($("query").value.trim()) await search();
  } catch (error) {
    if (!(error instanceof NeedsToken)) showMessage(error.message, true);
  }
});

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});

showStatus().catch((error) => {
  if (!(error instanceof NeedsToken)) showMessage(error.message, true);
});
