// burrow web UI: the projects list (/projects) and a project's members and invitations
// (/projects/{id}/members). Loaded before app.js, whose helpers (h, api, explain, toast,
// timeEl, field, clearErrors, fieldError, confirmDialog, navigate) it uses at call time,
// with accounts.js's currentUser, onceField and listTable. The server decides what each role
// may do (docs/accounts.md); the page only greys out what would be refused anyway.
'use strict';

const ROLES = ['owner', 'admin', 'member', 'viewer'];
const MANAGERS = ['owner', 'admin'];

// ---------- /projects ----------

function projectsPage(main) {
  const pageError = h('p.form-error#page-error', { role: 'alert' });
  const projects = listTable('projects', ['Project', 'Your role', 'Created', ''], h('tbody'),
    'No projects yet. Create one below, or ask a project owner for an invitation.');
  const name = h('input', { type: 'text', autocomplete: 'off', 'data-field': 'name' });
  const form = h('form#project-form', { novalidate: true },
    h('div.inline-form', {}, field('project-name', 'New project name', name), h('button', { type: 'submit', text: 'Create project' })),
    h('p.form-error', { role: 'alert' }));
  main.append(
    h('div.page-head', {}, h('div', {}, h('h1', { text: 'Projects' }),
      h('p.sub', { text: 'A project groups devices and the people who may use them.' }))),
    pageError, projects.el,
    h('section.card', { 'aria-labelledby': 'new-project-title' }, h('h2#new-project-title.flush', { text: 'New project' }), form));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const p = await api('POST', '/projects', { name: name.value });
      toast(`Created ${p.name}; you are its owner`);
      name.value = '';
      await refresh();
    } catch (err) { fieldError(form, err.status === 422 ? err.field : null, explain(err)); }
  });

  async function refresh() {
    const list = await api('GET', '/projects');
    projects.fill(list.map((p) => h('tr', { 'data-name': p.name },
      h('td', { 'data-label': 'Project' }, h('strong', { text: p.name })),
      h('td', { 'data-label': 'Your role', text: p.role || '—' }),
      h('td', { 'data-label': 'Created' }, timeEl(p.created_at)),
      h('td', { 'data-label': 'Actions' }, h('div.url', {},
        h('a.button.small.secondary', { href: `/projects/${p.id}/members`, text: 'Members', 'aria-label': `Members of ${p.name}` }),
        h('a.button.small.secondary', { href: `/traffic?project=${p.id}`, text: 'Traffic', 'aria-label': `Traffic of ${p.name}` }))))));
  }

  refresh().catch((e) => { pageError.textContent = explain(e); });
  return { stop() {} };
}

// ---------- /projects/{id}/members ----------

function membersPage(main, projectId) {
  const base = `/projects/${encodeURIComponent(projectId)}`;
  const title = h('h1', { text: 'Members' });
  const sub = h('p.sub#members-role');
  const pageError = h('p.form-error#page-error', { role: 'alert' });
  const members = listTable('members', ['Member', 'Role', 'Actions'], h('tbody'), 'No members.');
  const leave = h('button.danger#leave-project', { type: 'button', text: 'Leave project', hidden: true });
  const leaveError = h('p.error', { role: 'alert' });

  const email = h('input', { type: 'email', autocomplete: 'off', 'data-field': 'email' });
  const role = h('select', { 'data-field': 'role' });
  const inviteForm = h('form#invite-form', { novalidate: true },
    h('div.inline-form', {},
      field('invite-email', 'Email', email),
      field('invite-role', 'Role', role),
      h('button', { type: 'submit', text: 'Invite' })),
    h('p.form-error#invite-error', { role: 'alert' }));
  const shown = h('div#invite-shown');
  const pending = listTable('invitations', ['Email', 'Role', 'Sent', 'Expires', ''], h('tbody'), 'No pending invitations.');
  const invitations = h('section#invitations-section', { 'aria-labelledby': 'inv-title', hidden: true },
    h('h2#inv-title', { text: 'Invitations' }),
    h('p.sub', { text: 'An invitation is a link, valid for 7 days and once: pass it on to the person you invite.' }),
    shown,
    h('section.card', { 'aria-labelledby': 'invite-title' }, h('h3#invite-title.flush', { text: 'Invite someone' }), inviteForm),
    h('h3', { text: 'Pending' }), pending.el);

  main.append(
    h('p', {}, h('a', { href: '/projects', text: '← Projects' })),
    h('div.page-head', {}, h('div', {}, title, sub), h('div', {}, leave, leaveError)),
    pageError,
    h('h2', { text: 'Members' }),
    members.el,
    invitations);

  let me = null;
  let myRole = null;

  leave.addEventListener('click', async () => {
    leaveError.textContent = '';
    const ok = await confirmDialog({
      title: 'Leave this project?',
      body: 'You lose access to its devices and tunnels at once; someone must invite you to come back.',
      confirm: 'Leave project',
    });
    if (!ok) { leave.focus(); return; }
    try {
      await api('DELETE', `${base}/members/${me.id}`);
      toast('You left the project');
      navigate('/projects');
    } catch (e) { leaveError.textContent = explain(e); }
  });

  inviteForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(inviteForm);
    if (!email.value.trim()) return fieldError(inviteForm, 'email', 'Enter the email address to invite.');
    try {
      const inv = await api('POST', `${base}/invitations`, { email: email.value.trim(), role: role.value });
      const box = onceField('invite-link', `Invitation link for ${inv.email} (${inv.role})`, inv.accept_url, 'the invitation link');
      if (inv.emailed) box.append(h('p.hint', { text: `It was also emailed to ${inv.email}.` }));
      shown.replaceChildren(box);
      email.value = '';
      await refresh();
    } catch (err) {
      // "already a member" (409) is about the address typed: say it there.
      const f = err.status === 422 ? err.field : (err.status === 409 ? 'email' : null);
      fieldError(inviteForm, f, explain(err));
    }
  });

  function memberRow(m) {
    const err = h('p.error', { role: 'alert' });
    const self = me && m.user_id === me.id;
    const manage = MANAGERS.includes(myRole);
    // Only owners make, unmake or remove owners; admins manage everyone else.
    const mayChange = manage && (myRole === 'owner' || m.role !== 'owner');
    const select = h('select', { 'aria-label': `Role of ${m.email}`, disabled: !mayChange },
      ROLES.map((r) => h('option', { value: r, text: r, disabled: r === 'owner' && myRole !== 'owner' })));
    select.value = m.role;
    select.addEventListener('change', async () => {
      err.textContent = '';
      select.disabled = true;
      try {
        await api('PATCH', `${base}/members/${m.user_id}`, { role: select.value });
        toast(`${m.email} is now ${select.value}`);
        await refresh();
      } catch (e) {
        select.value = m.role;
        select.disabled = false;
        err.textContent = explain(e);
      }
    });
    const remove = !self && mayChange ? h('button.small.danger', {
      type: 'button', text: 'Remove', 'aria-label': `Remove ${m.email}`,
      onclick: async () => {
        const ok = await confirmDialog({
          title: `Remove ${m.email}?`,
          body: 'They lose access to this project’s devices and tunnels at once.',
          confirm: 'Remove member',
        });
        if (!ok) return;
        try {
          await api('DELETE', `${base}/members/${m.user_id}`);
          toast(`Removed ${m.email}`);
          await refresh();
        } catch (e) { err.textContent = explain(e); }
      },
    }) : null;
    return h('tr', { 'data-email': m.email, 'data-role': m.role },
      h('td', { 'data-label': 'Member' }, h('strong', { text: m.email }), self ? h('p.sub', { text: 'you' }) : null),
      h('td', { 'data-label': 'Role' }, select),
      h('td', { 'data-label': 'Actions' }, remove, err));
  }

  function invitationRow(inv) {
    const err = h('p.error', { role: 'alert' });
    const withdraw = h('button.small.danger', {
      type: 'button', text: 'Withdraw', 'aria-label': `Withdraw the invitation of ${inv.email}`,
      onclick: async () => {
        err.textContent = '';
        try {
          await api('DELETE', `${base}/invitations/${inv.id}`);
          toast(`Withdrew the invitation of ${inv.email}`);
          await refresh();
        } catch (e) { err.textContent = explain(e); }
      },
    });
    return h('tr', { 'data-email': inv.email },
      h('td', { 'data-label': 'Email', text: inv.email }),
      h('td', { 'data-label': 'Role', text: inv.role }),
      h('td', { 'data-label': 'Sent' }, timeEl(inv.created_at)),
      h('td', { 'data-label': 'Expires' }, timeEl(inv.expires_at)),
      h('td', { 'data-label': 'Actions' }, withdraw, err));
  }

  async function refresh() {
    const [project, list, who] = await Promise.all([api('GET', base), api('GET', `${base}/members`), currentUser()]);
    me = who;
    const mine = list.find((m) => m.user_id === me.id);
    myRole = project.role || (mine ? mine.role : null);
    title.textContent = `${project.name}: members`;
    document.title = `${project.name} members · burrow`;
    sub.textContent = myRole ? `Your role: ${myRole}` : 'You are not a member of this project (server administrator).';
    leave.hidden = !mine;
    members.fill(list.map(memberRow));
    const manage = MANAGERS.includes(myRole);
    invitations.hidden = !manage;
    if (!manage) return;
    const offered = ROLES.filter((r) => r !== 'owner' || myRole === 'owner');
    if (role.dataset.key !== offered.join()) {
      role.replaceChildren(...offered.map((r) => h('option', { value: r, text: r, selected: r === 'member' })));
      role.dataset.key = offered.join();
    }
    const invs = await api('GET', `${base}/invitations`);
    pending.fill((Array.isArray(invs) ? invs : invs.items || []).map(invitationRow));
  }

  refresh().catch((e) => { pageError.textContent = explain(e); });
  return { stop() {} };
}
