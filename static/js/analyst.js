/* Hotline analyst workspace: the timed, audited reveal and keyboard shortcuts.
 *
 * Served as a static file (CSP script-src 'self'): no inline script anywhere. Previews arrive
 * blurred from the server; an unblurred one is fetched only after POST /staff/contents/<id>/reveal
 * (audited) returned a single-use token, is shown for a few seconds, then replaced by the blurred
 * one again. Leaving the tab, pressing Esc or clicking the image blurs it at once.
 */
(function () {
  "use strict";

  var revealed = null; // { figure, img, timer, ticker, failsafe }

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function setCountdown(figure, text) {
    var countdown = figure.querySelector("[data-countdown]");
    if (countdown) {
      countdown.textContent = text;
    }
  }

  function blurAgain() {
    if (!revealed) {
      return;
    }
    var current = revealed;
    revealed = null;
    window.clearTimeout(current.timer);
    window.clearTimeout(current.failsafe);
    window.clearInterval(current.ticker);
    current.img.src = current.img.getAttribute("data-blur-src");
    current.figure.classList.remove("revealed");
    setCountdown(current.figure, "");
  }

  function startTimer(state, seconds) {
    if (revealed !== state) {
      return;
    }
    var left = seconds;
    setCountdown(state.figure, left + " s");
    state.ticker = window.setInterval(function () {
      left -= 1;
      setCountdown(state.figure, left > 0 ? left + " s" : "");
    }, 1000);
    state.timer = window.setTimeout(blurAgain, seconds * 1000);
  }

  function showBreakReminder() {
    var reminder = document.querySelector("[data-break-reminder]");
    if (reminder) {
      reminder.hidden = false;
    }
  }

  function reveal(figure) {
    var url = figure.getAttribute("data-reveal-url");
    if (!url) {
      return;
    }
    blurAgain();
    var body = new URLSearchParams();
    body.set("case", figure.getAttribute("data-case") || "");
    body.set("grey", figure.getAttribute("data-grey") === "1" ? "1" : "0");
    setCountdown(figure, "…");
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: body,
    })
      .then(function (response) {
        return response.json().then(
          function (data) {
            return { ok: response.ok, data: data };
          },
          function () {
            return { ok: false, data: {} };
          }
        );
      })
      .then(function (result) {
        if (!result.ok || !result.data.src) {
          setCountdown(figure, result.data.error || "Reveal refused.");
          return;
        }
        if (result.data.break_due) {
          showBreakReminder();
        }
        var img = figure.querySelector("img");
        var seconds = Math.max(1, parseInt(result.data.seconds, 10) || 10);
        var state = { figure: figure, img: img, timer: 0, ticker: 0, failsafe: 0 };
        revealed = state;
        figure.classList.add("revealed");
        img.addEventListener(
          "load",
          function () {
            startTimer(state, seconds);
          },
          { once: true }
        );
        img.addEventListener(
          "error",
          function () {
            if (revealed === state) {
              blurAgain();
              setCountdown(figure, "Could not load the image.");
            }
          },
          { once: true }
        );
        // Whatever happens to the load, the unblurred image never stays longer than this.
        state.failsafe = window.setTimeout(function () {
          if (revealed === state) {
            blurAgain();
          }
        }, (seconds + 15) * 1000);
        img.src = result.data.src;
      })
      .catch(function () {
        setCountdown(figure, "Reveal failed.");
      });
  }

  function previews() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-preview]"));
  }

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-content-card]"));
  }

  function currentCard() {
    var active = document.activeElement;
    var card = active && active.closest ? active.closest("[data-content-card]") : null;
    if (card) {
      return card;
    }
    var all = cards();
    return all.length === 1 ? all[0] : null;
  }

  function currentPreview() {
    var active = document.activeElement;
    var figure = active && active.closest ? active.closest("[data-preview]") : null;
    if (figure) {
      return figure;
    }
    var card = currentCard();
    return card ? card.querySelector("[data-preview]") : null;
  }

  function moveFocus(step) {
    var all = previews();
    if (!all.length) {
      return;
    }
    var index = all.indexOf(currentPreview());
    var next = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + step));
    all[next].focus();
    all[next].scrollIntoView({ block: "nearest" });
  }

  function chooseVerdict(number) {
    var card = currentCard();
    if (!card) {
      return;
    }
    var radios = card.querySelectorAll("[data-assessment-form] input[type=radio][name$=verdict]");
    var radio = radios[number - 1];
    if (radio) {
      radio.checked = true;
      radio.focus();
    }
  }

  function clickShortcut(name) {
    var button = document.querySelector('[data-shortcut="' + name + '"]:not([disabled])');
    if (button) {
      button.click();
    }
  }

  function toggleHelp() {
    var dialog = document.getElementById("shortcut-help");
    if (!dialog || typeof dialog.showModal !== "function") {
      return;
    }
    if (dialog.open) {
      dialog.close();
    } else {
      dialog.showModal();
    }
  }

  function typing(target) {
    if (!target || !target.closest) {
      return false;
    }
    if (target.closest("textarea, select, [contenteditable]")) {
      return true;
    }
    var input = target.closest("input");
    return Boolean(input) && ["radio", "checkbox", "button", "submit"].indexOf(input.type) < 0;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      blurAgain();
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      return;
    }
    var key = event.key;
    if (key === "?") {
      toggleHelp();
    } else if (key === "n") {
      clickShortcut("next");
    } else if (key === "s") {
      clickShortcut("skip");
    } else if (key === "g") {
      clickShortcut("grey");
    } else if (key === "j") {
      moveFocus(1);
    } else if (key === "k") {
      moveFocus(-1);
    } else if (key === "r") {
      var figure = currentPreview();
      if (figure) {
        reveal(figure);
      }
    } else if (key >= "1" && key <= "5") {
      chooseVerdict(parseInt(key, 10));
    } else {
      return;
    }
    event.preventDefault();
  });

  // Nothing stays unblurred while the analyst is not looking at this tab.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      blurAgain();
    }
  });
  window.addEventListener("blur", blurAgain);
  window.addEventListener("pagehide", blurAgain);

  document.addEventListener("DOMContentLoaded", function () {
    previews().forEach(function (figure) {
      var button = figure.querySelector("[data-reveal]");
      if (button) {
        button.hidden = false;
        button.addEventListener("click", function () {
          reveal(figure);
        });
      }
      figure.querySelector("img").addEventListener("click", function () {
        if (revealed && revealed.figure === figure) {
          blurAgain();
        }
      });
    });
    var help = document.querySelector('[data-shortcut="help"]');
    if (help) {
      help.addEventListener("click", toggleHelp);
    }
    var selectAll = document.querySelector("[data-select-all]");
    if (selectAll) {
      selectAll.addEventListener("change", function () {
        document.querySelectorAll("[data-bulk-confirm] input[name=case]:not([disabled])").forEach(function (box) {
          box.checked = selectAll.checked;
        });
      });
    }
  });
})();
