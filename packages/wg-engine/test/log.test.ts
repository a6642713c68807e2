import assert from 'node:assert/strict';
import { createLogger, parseLogFormat } from '../src/log.js';

// The log lines operators feed to journald, Loki or jq: a timestamp first in
// text, one parseable object per line in JSON, levels filtered.

const at = new Date('2026-12-04T23:50:18.123Z');

function collect(opts: Parameters<typeof createLogger>[1] & object, level: Parameters<typeof createLogger>[0] = 'debug') {
  const lines: string[] = [];
  const log = createLogger(level, { now: () => at, sink: (l) => lines.push(l), ...opts });
  return { log, lines };
}

describe('createLogger', () => {
  it('text: ISO timestamp first, then the name, level and message; fields as key=value', () => {
    const { log, lines } = collect({ format: 'text', name: 'wirecagesrv' });
    log.info('registered a peer', { peer: 'AbCd1234', port: 51820, addr: 'a b' });
    log.warn('multi\nline');
    assert.deepEqual(lines, [
      '2026-12-04T23:50:18.123Z wirecagesrv info: registered a peer peer=AbCd1234 port=51820 addr="a b"',
      '2026-12-04T23:50:18.123Z wirecagesrv warn: multi\\nline',
    ]);
  });

  it('json: one object per line with time, level, msg and the fields, which cannot replace them', () => {
    const { log, lines } = collect({ format: 'json', name: 'wirecagesrv' });
    log.error('quote " and\nnewline', { peer: 'x', level: 'forged', n: 3, ok: true, none: null });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes('\n'));
    assert.deepEqual(JSON.parse(lines[0]!), {
      time: '2026-12-04T23:50:18.123Z',
      level: 'error',
      name: 'wirecagesrv',
      msg: 'quote " and\nnewline',
      peer: 'x',
      field_level: 'forged',
      n: 3,
      ok: true,
      none: null,
    });
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!) as Record<string, unknown>).slice(0, 4), ['time', 'level', 'name', 'msg']);
  });

  it('drops records below the level, in both formats; silent writes nothing', () => {
    for (const format of ['text', 'json'] as const) {
      const { log, lines } = collect({ format }, 'warn');
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      assert.equal(lines.length, 2, format);
    }
    const { log, lines } = collect({ format: 'json' }, 'silent');
    log.error('e');
    assert.equal(lines.length, 0);
  });

  it('keeps the bare-sink form: `level: msg` for the caller to decorate', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    log.info('hello', { k: 1 });
    log.debug('hidden');
    assert.deepEqual(lines, ['info: hello k=1']);
  });

  it('parseLogFormat takes text and json and names them when refusing', () => {
    assert.equal(parseLogFormat('json'), 'json');
    assert.equal(parseLogFormat('text'), 'text');
    assert.throws(() => parseLogFormat('xml'), /log format must be one of text, json, not "xml"/);
  });
});
