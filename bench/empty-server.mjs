// The floor: an empty uWebSockets.js POST handler answering a fixed 200 JSON after reading the
// body, as the bidder's server module does. Prints its port on stdout.
import uWS from 'uWebSockets.js';

const body = '{"id":"x","seatbid":[]}';
uWS
  .App()
  .post('/*', (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    res.onData((_chunk, isLast) => {
      if (isLast && !aborted) res.cork(() => res.writeHeader('content-type', 'application/json').end(body));
    });
  })
  .listen('127.0.0.1', 0, (ls) => {
    if (!ls) process.exit(1);
    process.stdout.write(`${uWS.us_socket_local_port(ls)}\n`);
  });
