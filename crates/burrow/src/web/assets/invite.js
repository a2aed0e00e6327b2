// burrow web UI: an invitation link (/invite#token=...). The token lives in the URL's
// fragment, which browsers never send to a server; this page moves it into sessionStorage
// (so that it survives signing in, which keeps only path and query) and off the address bar,
// and sends it nowhere but the bodies of POST /invitations/lookup, /accept and /signup.
// Loaded before app.js, whose helpers it uses at call time, with accounts.js's currentUser.
'use strict';

const INVITE = 'burrow.invite';

/** The invitation token: from the fragment (then dropped from the URL) or this tab's storage. */
function inviteToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(INVITE, decodeURIComponent(m[1]));
    history.replaceState({}, '', '/invite');
  }
  return sessionStorage.getItem(INVITE);
}

function invitePage(main) {
  const token = inviteToken();
  const body = h('div#invite-body');
  const error = h('p.form-error#invite-error', { role: 'alert' });
  main.append(h('div.login.card.invite', {},
    h('h1', {}, h('img', { src: '/ui/icon.svg', alt: '', width: 28, height: 28 }), 'Invitation'),
    error, body));

  const fail = (msg) => { error.textContent = msg; body.replaceChildren(); };
  if (!token) {
    fail('This page needs the whole invitation link (it ends in "#token=…"). Open the link you were sent again.');
    return { stop() {} };
  }

  const done = (projectId) => {
    sessionStorage.removeItem(INVITE);
    navigate(`/projects/${projectId}/members`, true);
  };

  function signupForm(inv) {
    const pw = h('input', { type: 'password', autocomplete: 'new-password', 'data-field': 'password' });
    const again = h('input', { type: 'password', autocomplete: 'new-password', 'data-field': 'password_again' });
    const submit = h('button', { type: 'submit', text: 'Create account and join' });
    const form = h('form#signup-form', { novalidate: true },
      h('p', { text: `No account exists for ${inv.email} yet: choose a password to create it.` }),
      field('signup-password', 'Password', pw, 'At least 8 characters.'),
      field('signup-again', 'Password again', again),
      h('p.form-error', { role: 'alert' }),
      submit);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!pw.value) return fieldError(form, 'password', 'Choose a password.');
      if (pw.value !== again.value) return fieldError(form, 'password_again', 'The two passwords differ.');
      submit.disabled = true;
      try {
        const r = await api('POST', '/invitations/signup', { token, password: pw.value });
        sessionStorage.setItem(TOKEN, r.access_token);
        sessionStorage.setItem(EMAIL, inv.email.toLowerCase());
        toast(`Welcome: you joined ${inv.project_name}`);
        done(r.project_id);
      } catch (err) {
        submit.disabled = false;
        if (err.status === 409) {
          // Someone created the account meanwhile: signing in is the way now.
          body.replaceChildren(signIn(inv, 'An account for this address exists now.'));
        } else {
          fieldError(form, err.status === 422 ? 'password' : null, explain(err));
        }
      }
    });
    return form;
  }

  function signIn(inv, why) {
    const go = h('button#invite-sign-in', { type: 'button', text: 'Sign in to accept' });
    go.addEventListener('click', () => {
      // After signing in, the login page goes back to NEXT; the token waits in sessionStorage.
      sessionStorage.removeItem(TOKEN);
      sessionStorage.removeItem(EMAIL);
      sessionStorage.setItem(NEXT, '/invite');
      navigate('/login');
    });
    return h('div', {}, h('p', { text: `${why} Sign in as ${inv.email}, and come back here to accept.` }), go);
  }

  function acceptButton(inv) {
    const accept = h('button#invite-accept', { type: 'button', text: `Accept and join ${inv.project_name}` });
    accept.addEventListener('click', async () => {
      error.textContent = '';
      accept.disabled = true;
      try {
        const m = await api('POST', '/invitations/accept', { token });
        toast(`You joined ${inv.project_name} as ${m.role}`);
        done(m.project_id);
      } catch (err) {
        accept.disabled = false;
        error.textContent = err.status === 403 ? `This invitation is for ${inv.email}; sign in with that account to accept it.` : explain(err);
      }
    });
    return accept;
  }

  (async () => {
    let inv;
    try {
      inv = await api('POST', '/invitations/lookup', { token });
    } catch (err) {
      sessionStorage.removeItem(INVITE);
      if (err.status === 404) return fail('This invitation link is not valid. Check that you copied all of it, or ask for a new one.');
      if (err.status === 410) return fail('This invitation has expired or was already used. Ask the project’s owner for a new one.');
      return fail(explain(err));
    }
    const facts = h('dl.facts#invite-facts',
      {}, h('dt', { text: 'Project' }), h('dd', { text: inv.project_name }),
      h('dt', { text: 'For' }), h('dd', { text: inv.email }),
      h('dt', { text: 'Role' }), h('dd', { text: inv.role }),
      h('dt', { text: 'Expires' }), h('dd', {}, timeEl(inv.expires_at)));
    const parts = [h('p', { text: `You are invited to join ${inv.project_name} as ${inv.role}.` }), facts];
    if (sessionStorage.getItem(TOKEN)) {
      const me = await currentUser();
      if (me.email.toLowerCase() === inv.email.toLowerCase()) {
        parts.push(acceptButton(inv));
      } else {
        parts.push(signIn(inv, `You are signed in as ${me.email}, but this invitation is for ${inv.email}.`));
      }
    } else if (inv.account_exists) {
      parts.push(signIn(inv, 'You already have an account.'));
    } else {
      parts.push(signupForm(inv));
    }
    body.replaceChildren(...parts);
  })().catch((err) => fail(explain(err)));

  return { stop() {} };
}
