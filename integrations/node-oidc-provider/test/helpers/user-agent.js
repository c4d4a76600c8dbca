// A user agent for node-oidc-provider's development interactions, over plain HTTP with fetch:
// redirects are followed by hand (to stop at the client's redirect URI), cookies are kept per
// path, and the login and consent forms are read from the HTML and submitted.

export class UserAgent {
  #cookies = new Map(); // name -> { value, path }

  /** One request, no redirect followed; cookies sent and stored. */
  async request(url, { method = 'GET', form } = {}) {
    const target = new URL(url);
    const headers = { accept: 'text/html' };
    const cookie = [...this.#cookies]
      .filter(([, c]) => target.pathname.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(target, { method, headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) this.#store(line);
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }

  /**
   * Drive an authorization request until the OP redirects to `redirectUri`: sign in as `login`
   * at the login form, confirm at the consent form. Returns the final redirect URL (with the
   * code), or the last response if the OP stops anywhere else (an error page).
   */
  async authorize(authorizationUrl, redirectUri, { login = 'alice' } = {}) {
    let response = await this.request(authorizationUrl);
    let base = authorizationUrl;
    for (let step = 0; step < 10; step += 1) {
      if ([302, 303].includes(response.status)) {
        const next = new URL(response.location, base).href;
        if (next.startsWith(redirectUri)) return { redirect: next };
        base = next;
        response = await this.request(next);
      } else if (response.status === 200 && /<form/.test(response.text)) {
        const { action, fields } = readForm(response.text);
        if (fields.prompt === 'login') Object.assign(fields, { login, password: 'any password' });
        base = new URL(action, base).href;
        response = await this.request(base, { method: 'POST', form: fields });
      } else {
        return { response };
      }
    }
    throw new Error('too many steps in the authorization request');
  }

  #store(line) {
    const [pair, ...attributes] = line.split(';').map((part) => part.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let expired = value === '';
    for (const attribute of attributes) {
      const [key, val = ''] = attribute.split('=');
      if (key.toLowerCase() === 'path') path = val;
      if (key.toLowerCase() === 'max-age' && Number(val) <= 0) expired = true;
      if (key.toLowerCase() === 'expires' && Date.parse(val) <= Date.now()) expired = true;
    }
    if (expired) this.#cookies.delete(name);
    else this.#cookies.set(name, { value, path });
  }
}

// The first form of the page: its action and its named inputs with their values (the
// devInteractions forms are small and regular: hidden inputs, text and password fields).
function readForm(html) {
  const form = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error('no form in the page');
  const action = /action="([^"]*)"/i.exec(form[0])?.[1] ?? '';
  const fields = {};
  for (const [input] of form[1].matchAll(/<input\b[^>]*>/gi)) {
    const name = /name="([^"]*)"/i.exec(input)?.[1];
    if (name) fields[name] = unescape(/value="([^"]*)"/i.exec(input)?.[1] ?? '');
  }
  return { action: unescape(action), fields };
}

function unescape(text) {
  return text.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}
