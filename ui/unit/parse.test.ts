import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ParamDef } from '../src/api';
import { looksLikeCSV, parseCSV, parseParam, toText } from '../src/parse';

const p = (type: string, extra: Partial<ParamDef> = {}): ParamDef => ({ name: 'x', type, optional: false, ...extra });

describe('parseParam', () => {
  const ok: [string, ParamDef, string, unknown][] = [
    ['string', p('STRING'), 'hello', 'hello'],
    ['empty required string is empty', p('STRING'), '', ''],
    ['integer', p('NUMBER_INTEGER'), '42', 42],
    ['negative integer', p('NUMBER_INTEGER'), '-3', -3],
    ['double', p('NUMBER_DOUBLE'), '0.25', 0.25],
    ['boolean true', p('BOOLEAN'), 'true', true],
    ['boolean false', p('BOOLEAN'), 'false', false],
    ['list', p('LIST'), '[1, "a"]', [1, 'a']],
    ['struct', p('STRUCT'), '{"a": {"b": 1}}', { a: { b: 1 } }],
    ['empty with default is left to the server', p('NUMBER_INTEGER', { default: 3 }), '', undefined],
    ['empty optional is omitted', p('STRING', { optional: true }), ' ', undefined],
  ];
  for (const [name, def, text, want] of ok) it(name, () => assert.deepEqual(parseParam(def, text), want));

  const bad: [string, ParamDef, string, RegExp][] = [
    ['fraction for integer', p('NUMBER_INTEGER'), '1.5', /integer/],
    ['word for number', p('NUMBER_DOUBLE'), 'abc', /number/],
    ['missing integer', p('NUMBER_INTEGER'), '', /needs a value/],
    ['object for list', p('LIST'), '{}', /JSON list/],
    ['list for struct', p('STRUCT'), '[]', /JSON object/],
    ['broken JSON', p('STRUCT'), '{', /must be JSON/],
  ];
  for (const [name, def, text, re] of bad) it(`rejects ${name}`, () => assert.throws(() => parseParam(def, text), re));

  it('round-trips through toText', () => {
    for (const [def, v] of [
      [p('LIST'), [1, 2]],
      [p('STRUCT'), { k: 'v' }],
      [p('NUMBER_DOUBLE'), 1.5],
      [p('STRING'), 'a b'],
    ] as [ParamDef, any][])
      assert.deepEqual(parseParam(def, toText(def, v)), v);
  });
});

describe('parseCSV', () => {
  it('handles quotes, doubled quotes, commas and CRLF', () => {
    assert.deepEqual(parseCSV('a,b\r\n"x, y","say ""hi"""\n1,\n'), [
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['1', ''],
    ]);
  });
  it('keeps a last line without newline and a quoted newline', () => {
    assert.deepEqual(parseCSV('a\n"multi\nline"'), [['a'], ['multi\nline']]);
  });
  it('stops at maxRows', () => assert.equal(parseCSV('1\n2\n3\n4\n', 2).length, 2));
  it('tells tables from prose', () => {
    assert.equal(looksLikeCSV('step,loss\n1,0.5\n2,0.25\n'), true);
    assert.equal(looksLikeCSV('hello, world\nthis is text\n'), false);
    assert.equal(looksLikeCSV('one line,only'), false);
  });
});
