/* The Webcam page (dash_app/pages/webcam.py): camera frames up through the
 * dashboard's /webcam/frame, the models' answers back from /webcam/answers, drawn
 * over the video. Dash loads every asset on every page, so everything here starts
 * from a click on the page's own buttons and stops when the page is gone.
 *
 * Frames never pile up: one may be in flight and MAX_AWAITING may wait for their
 * answers. A tick that finds no room sends nothing and counts a dropped frame, so
 * the next frame sent is always the newest picture, never a stale one from a queue.
 */
(function () {
  "use strict";

  var MAX_AWAITING = 2;       // frames sent whose answers are not all in
  var GIVE_UP_MS = 30000;     // a frame unanswered this long is counted and forgotten
  var POLL_MS = 400;
  var MAX_SIDE = 320;         // the models see 64 px; a smaller frame is a faster upload
  var state = null;

  function $(id) { return document.getElementById(id); }

  function models() {
    var config = $("webcam-config");
    return config ? JSON.parse(config.getAttribute("data-models") || "[]") : [];
  }

  function showAlert(kind, html) {
    var box = $("webcam-alert");
    if (!box) { return; }
    box.innerHTML = html ? '<div class="alert alert-' + kind + ' py-2" id="webcam-alert-text">' + html + "</div>" : "";
  }

  function explain(err) {
    var name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "<strong>The camera was refused.</strong> Allow this site to use the camera (the camera icon in the " +
        "address bar), then press Start camera again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "<strong>No camera found.</strong> Plug one in, or stream a video file from a terminal with " +
        "<code class=\"cmd\">triptych stream webcam --source clip.mp4</code>.";
    }
    if (name === "NotReadableError") {
      return "<strong>The camera is busy.</strong> Another application is using it; close that one and retry.";
    }
    return "<strong>The camera could not start:</strong> " + (err && err.message ? err.message : String(err));
  }

  function setRunning(running) {
    var toggle = $("webcam-toggle"), snap = $("webcam-snapshot"), placeholder = $("webcam-placeholder");
    if (toggle) {
      toggle.textContent = running ? "Stop camera" : "Start camera";
      toggle.className = running ? "btn btn-danger" : "btn btn-primary";
    }
    if (snap) { snap.disabled = !running; }
    if (placeholder) { placeholder.style.display = running ? "none" : ""; }
  }

  function start() {
    if (state) { return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showAlert("danger", "<strong>This page cannot reach a camera.</strong> Browsers give cameras only to pages " +
        "served over https or from localhost: open the dashboard at <code class=\"cmd\">http://localhost:" +
        (window.location.port || "80") + "/webcam</code>, or put it behind https.");
      return;
    }
    showAlert("", "");
    navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false })
      .then(function (stream) {
        var video = $("webcam-video");
        if (!video) { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
        video.playsInline = true;
        video.srcObject = stream;
        state = {
          stream: stream, video: video, session: Math.random().toString(36).slice(2, 10), seq: 0,
          sent: 0, answered: 0, dropped: 0, failed: 0, unanswered: 0, inflight: false,
          awaiting: {}, shown: null, lastLatency: null, timer: null, poller: null, models: models()
        };
        setRunning(true);
        schedule();
        state.poller = setInterval(poll, POLL_MS);
        window.requestAnimationFrame(draw);
      })
      .catch(function (err) { showAlert("danger", explain(err)); });
  }

  function stop() {
    if (!state) { return; }
    clearTimeout(state.timer);
    clearInterval(state.poller);
    state.stream.getTracks().forEach(function (t) { t.stop(); });
    if (state.video) { state.video.srcObject = null; }
    state = null;
    setRunning(false);
  }

  function rate() {
    var input = $("webcam-rate");
    var value = input ? parseInt(input.value, 10) : 2;
    return Math.min(5, Math.max(1, value || 2));
  }

  function pageGone() {
    return !state || !document.body.contains(state.video);
  }

  function schedule() {
    state.timer = setTimeout(tick, 1000 / rate());
  }

  function tick() {
    if (pageGone()) { stop(); return; }
    if (state.inflight || Object.keys(state.awaiting).length >= MAX_AWAITING) {
      state.dropped += 1;  // the pipeline is behind: skip this picture, the next tick takes a newer one
    } else {
      send(false);
    }
    renderStats();
    schedule();
  }

  function capture() {
    var video = state.video, w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) { return Promise.resolve(null); }
    var scale = Math.min(1, MAX_SIDE / Math.max(w, h));
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.85); });
  }

  // Every write carries the session's CSRF token, as Dash's own requests do (dash_app/auth.py).
  function csrfToken() {
    var found = document.cookie.split("; ").find(function (c) { return c.indexOf("_csrf_token=") === 0; });
    return found ? decodeURIComponent(found.slice("_csrf_token=".length)) : "";
  }

  function send(snapshot) {
    var run = state;
    if (!snapshot) { run.inflight = true; }
    return capture().then(function (blob) {
      if (!blob) { return null; }
      run.seq += 1;
      var seq = run.seq, label = ($("webcam-label") || {}).value || "";
      var query = new URLSearchParams({ session: run.session, seq: String(seq), snapshot: snapshot ? "1" : "0" });
      if (label) { query.set("label", label); }
      var sentAt = performance.now();
      return fetch("/webcam/frame?" + query.toString(), {
        method: "POST", body: blob, headers: { "Content-Type": "image/jpeg", "X-CSRFToken": csrfToken() }
      }).then(function (reply) {
        return reply.json().then(function (body) {
          if (!reply.ok) { throw new Error(body.error || ("HTTP " + reply.status)); }
          run.sent += 1;
          // A picture identical to one already sent (a still scene) comes back as that image's id.
          // The frame waiting for it stays, and a Snapshot among them keeps it a snapshot, whichever
          // reply lands last: without this a plain frame's later reply unmarked a snapshot.
          var waiting = run.awaiting[body.image_id];
          if (waiting) {
            waiting.snapshot = waiting.snapshot || snapshot;
          } else {
            run.awaiting[body.image_id] = { id: body.image_id, seq: seq, sentAt: sentAt, snapshot: snapshot,
              label: label, answers: {}, consensus: null };
          }
          if (run === state) { showAlert("", ""); }
        });
      }).catch(function (err) {
        run.failed += 1;
        if (run === state) { showAlert("warning", "<strong>A frame was not accepted:</strong> " + err.message); }
      });
    }).finally(function () {
      if (!snapshot) { run.inflight = false; }
    });
  }

  function poll() {
    if (pageGone()) { stop(); return; }
    var run = state, ids = Object.keys(run.awaiting);
    if (!ids.length) { return; }
    fetch("/webcam/answers?ids=" + ids.join(","))
      .then(function (reply) { return reply.json(); })
      .then(function (body) {
        var now = performance.now();
        ids.forEach(function (id) {
          var frame = run.awaiting[id], found = body.frames[id];
          if (!frame) { return; }
          if (found) {
            frame.answers = found.answers || {};
            frame.consensus = found.consensus;
            if (Object.keys(frame.answers).length && (!run.shown || frame.seq >= run.shown.seq)) {
              run.shown = frame;
            }
            if (found.consensus) {
              run.answered += 1;
              run.lastLatency = (now - frame.sentAt) / 1000;
              frame.answeredIn = run.lastLatency;
              delete run.awaiting[id];
              if (frame.snapshot) { addSnapshot(frame); }
              return;
            }
            if (found.status === "quarantined") { run.failed += 1; delete run.awaiting[id]; return; }
          }
          if (now - frame.sentAt > GIVE_UP_MS) { run.unanswered += 1; delete run.awaiting[id]; }
        });
        renderStats();
        describeShown(run);
      })
      .catch(function () { /* the next poll asks again */ });
  }

  function renderStats() {
    var box = $("webcam-stats");
    if (!box || !state) { return; }
    var parts = [
      "<span id=\"webcam-sent\">" + state.sent + "</span> sent",
      "<span id=\"webcam-answered\">" + state.answered + "</span> answered by all",
      "<span id=\"webcam-dropped\">" + state.dropped + "</span> dropped while the pipeline was busy"
    ];
    if (state.failed) { parts.push(state.failed + " refused"); }
    if (state.unanswered) { parts.push(state.unanswered + " unanswered after 30 s"); }
    var latency = state.lastLatency === null ? "" :
      "<div>last frame answered in <strong>" + state.lastLatency.toFixed(1) + " s</strong></div>";
    box.innerHTML = "<div>" + parts.join(" · ") + "</div>" + latency;
  }

  /* The overlay in words, on the canvas itself: for screen readers, and for tests. */
  function describeShown(run) {
    var canvas = $("webcam-overlay"), frame = run.shown;
    if (!canvas || !frame) { return; }
    var key = frame.id + ":" + Object.keys(frame.answers).length + ":" + !!frame.consensus;
    if (canvas.triptychShown === key) { return; }
    canvas.triptychShown = key;
    var words = run.models.map(function (m) {
      var a = frame.answers[m.name];
      return m.label + ": " + (a ? a["class"] + " " + pct(a.confidence) : "waiting");
    });
    words.push("consensus: " + (frame.consensus ? frame.consensus["class"] + " (" + frame.consensus.words + ")"
      : "waiting"));
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "Frame " + frame.seq + ". " + words.join("; "));
    canvas.setAttribute("data-image-id", frame.id);
  }

  function pct(value) { return value === null || value === undefined ? "" : Math.round(value * 100) + "%"; }

  function draw() {
    if (pageGone()) { return; }
    var video = state.video, canvas = $("webcam-overlay");
    var ratio = window.devicePixelRatio || 1, w = video.clientWidth, h = video.clientHeight;
    if (canvas && w && h) {
      if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
        canvas.width = Math.round(w * ratio);
        canvas.height = Math.round(h * ratio);
        canvas.style.width = w + "px";
        canvas.style.height = h + "px";
      }
      var ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, w, h);
      drawAnswers(ctx, state.shown, state.models);
    }
    window.requestAnimationFrame(draw);
  }

  function drawAnswers(ctx, frame, legend) {
    var rowH = 26, pad = 10, width = 330, rows = legend.length + 1;
    ctx.fillStyle = "rgba(17, 24, 39, 0.72)";
    ctx.fillRect(pad, pad, width, rowH * rows + (frame ? 30 : 12));
    ctx.font = "600 15px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    legend.forEach(function (model, i) {
      var y = pad + 6 + rowH * i + rowH / 2, answer = frame && frame.answers[model.name];
      ctx.fillStyle = model.color;
      ctx.fillRect(pad + 10, y - 7, 14, 14);
      ctx.fillStyle = "#e5e7eb";
      ctx.fillText(model.label, pad + 32, y);
      ctx.fillStyle = answer ? "#ffffff" : "#9ca3af";
      ctx.fillText(answer ? answer["class"] + "  " + pct(answer.confidence) : "…", pad + 170, y);
    });
    var y = pad + 6 + rowH * legend.length + rowH / 2, consensus = frame && frame.consensus;
    ctx.fillStyle = "#fbbf24";
    ctx.fillText("Consensus", pad + 32, y);
    ctx.fillStyle = consensus ? "#ffffff" : "#9ca3af";
    ctx.fillText(consensus ? consensus["class"] : (frame ? "waiting…" : "—"), pad + 170, y);
    if (frame) {
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillStyle = "#cbd5e1";
      ctx.fillText("frame " + frame.seq + (frame.answeredIn ? " · answered in " + frame.answeredIn.toFixed(1) + " s" : "") +
        (consensus ? " · " + consensus.words : ""), pad + 10, pad + rowH * rows + 18);
    }
  }

  function addSnapshot(frame) {
    var strip = $("webcam-snapshots");
    if (!strip) { return; }
    if (!strip.querySelector(".webcam-snapshot")) { strip.innerHTML = ""; }
    var link = document.createElement("a");
    link.href = "/image/" + frame.id;
    link.className = "webcam-snapshot";
    var img = document.createElement("img");
    img.src = "/media/" + frame.id + "/thumb";
    img.alt = "snapshot " + frame.seq;
    var caption = document.createElement("div");
    caption.className = "small";
    caption.textContent = frame.consensus ? frame.consensus["class"] + " · " + frame.consensus.words : "";
    link.appendChild(img);
    link.appendChild(caption);
    strip.insertBefore(link, strip.firstChild);
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("#webcam-toggle, #webcam-snapshot") : null;
    if (!target) { return; }
    if (target.id === "webcam-toggle") {
      if (state) { stop(); } else { start(); }
    } else if (state) {
      send(true);
    }
  });

  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "webcam-rate") {
      var shown = $("webcam-rate-value");
      if (shown) { shown.textContent = String(rate()); }
    }
  });
})();
