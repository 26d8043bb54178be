"""`reclake ask-server`: `POST /ask` and a small page at `/` over one loaded AskService.

    reclake ask-server --port 8012        # 127.0.0.1 unless --host says otherwise
    curl -s http://127.0.0.1:8012/ask -H 'Content-Type: application/json' \\
      -d '{"user_id": "1", "text": "a funny 80s film, nothing animated", "session": "s1"}'

The JSON is `reclake ask --json`'s. A refused request answers 422 with the reason in `detail`.
The page keeps one session per visit, so its follow-up box edits the last answer's fields.
"""

from __future__ import annotations

import threading

from pydantic import BaseModel

from models.ask.guard import AskInputError


class AskRequest(BaseModel):
    user_id: str
    text: str
    session: str | None = None


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reclake ask</title>
<style>
body { font: 15px system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; color: #222; }
input[type=text] { width: 100%; padding: .5rem; font-size: 15px; box-sizing: border-box; }
button { margin-top: .4rem; padding: .4rem 1rem; }
li { margin: .5rem 0; } .reason { color: #555; font-size: 13px; } .notice { color: #a40; }
#user { width: 8rem; } .fields { font-size: 13px; color: #666; }
</style></head><body>
<h1>Ask for films</h1>
<form id="ask"><label>User <input id="user" type="text" value="1"></label>
<p><input id="text" type="text" placeholder="a funny 80s film like Ghost, nothing animated"></p>
<button id="send" type="submit">Ask</button></form>
<p id="fields" class="fields"></p><div id="notices"></div><ol id="items"></ol>
<form id="followup" hidden><input id="more" type="text" placeholder="older / no horror / more like the second one">
<button id="send-more" type="submit">Follow up</button></form>
<script>
const session = "page-" + Math.random().toString(36).slice(2, 10);
async function ask(text) {
  const response = await fetch("/ask", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({user_id: document.getElementById("user").value, text, session})});
  const answer = await response.json();
  const items = document.getElementById("items"), notices = document.getElementById("notices");
  items.replaceChildren(); notices.replaceChildren();
  if (!response.ok) { const p = document.createElement("p"); p.className = "notice";
    p.textContent = answer.detail; notices.append(p); return; }
  document.getElementById("fields").textContent =
    `${answer.model_name} v${answer.model_version ?? "-"} · fields: ${JSON.stringify(answer.fields)}`;
  for (const note of answer.notices) { const p = document.createElement("p");
    p.className = "notice"; p.textContent = note; notices.append(p); }
  for (const item of answer.items) { const li = document.createElement("li");
    li.dataset.itemId = item.item_id; li.textContent = `${item.title} (${item.year ?? "?"}) `;
    const why = document.createElement("div"); why.className = "reason"; why.textContent = item.reason;
    li.append(why); items.append(li); }
  document.getElementById("followup").hidden = false;
}
document.getElementById("ask").onsubmit = e => { e.preventDefault(); ask(document.getElementById("text").value); };
document.getElementById("followup").onsubmit = e => { e.preventDefault();
  const more = document.getElementById("more"); ask(more.value); more.value = ""; };
</script></body></html>
"""


def build_app(service):
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse

    app = FastAPI(title="reclake ask")
    lock = threading.Lock()  # one request at a time: the parser's LLM and the session files

    @app.get("/", response_class=HTMLResponse)
    def page():
        return PAGE

    @app.get("/health")
    def health():
        return {"parser": service.parser_name, "champion": service.champion.model_name}

    @app.post("/ask")
    def ask(request: AskRequest):
        try:
            with lock:
                return service.answer(request.user_id, request.text, session=request.session)
        except AskInputError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None

    return app


def serve(service, host: str = "127.0.0.1", port: int = 8012) -> None:
    import uvicorn

    uvicorn.run(build_app(service), host=host, port=port, log_level="warning")
