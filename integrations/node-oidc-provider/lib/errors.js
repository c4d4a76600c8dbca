// The one error the resolvers throw: the registrar (its /jwks or its POST /resolve) cannot give
// an answer now, so nothing can be said about the client. Everything that is the client's fault
// (malformed, forged, expired, deleted) is never an error: it is an unknown client.
export class RegistrarUnavailable extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'RegistrarUnavailable';
  }
}
