import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvFields, MAX_LINE_CHARS, uploadRows, UploadFormatError, type UploadFormat, type UploadRow } from './audience-upload-parser.ts';

async function rows(chunks: (string | Buffer)[], format: UploadFormat): Promise<UploadRow[]> {
  const out: UploadRow[] = [];
  for await (const row of uploadRows(chunks, format)) out.push(row);
  return out;
}

describe('audience upload parser', () => {
  it('reads CSV members from the id column, with quotes, CRLF, a BOM and blank lines, numbering every line', async () => {
    const got = await rows(['\uFEFFemail,Custom_ID\r\n', 'a@x,ana\r\n\r\n"b,x","bo""b"\n', 'c@x,   \n', ',"unterminated\n'], 'csv');
    assert.deepEqual(got, [
      { line: 2, kind: 'custom_id', member: 'ana' },
      { line: 4, kind: 'custom_id', member: 'bo"b' },
      { line: 5, error: 'must give exactly one of custom_id' },
      { line: 6, error: 'has an unterminated quoted field' },
    ]);
  });

  it('takes custom_id or install_id per row when both columns exist', async () => {
    const got = await rows(['install_id,custom_id\n', 'ios-1,\n', ',ana\n', 'x,y'], 'csv');
    assert.deepEqual(got, [
      { line: 2, kind: 'install_id', member: 'ios-1' },
      { line: 3, kind: 'custom_id', member: 'ana' },
      { line: 4, error: 'must give exactly one of install_id, custom_id' },
    ]);
  });

  it('refuses a CSV without an id column, or an empty one, as a whole', async () => {
    await assert.rejects(rows(['email\n', 'a@x\n'], 'csv'), (e: unknown) => e instanceof UploadFormatError && e.code === 'MISSING_ID_COLUMN');
    await assert.rejects(rows([''], 'csv'), (e: unknown) => e instanceof UploadFormatError && e.code === 'EMPTY_UPLOAD');
    await assert.rejects(rows([`${'x,'.repeat(MAX_LINE_CHARS)}\ncustom_id\n`], 'csv'), (e: unknown) => e instanceof UploadFormatError && /header row \(line 1\) is longer/.test(e.message));
  });

  it('reads NDJSON objects and explains each bad line', async () => {
    const got = await rows(['{"custom_id":"ana"}\n{"install_id":"i-1","extra":1}\n', '{"custom_id":5}\nnot json\n[1]\n{"custom_id":"a","install_id":"b"}\n{"custom_id":"tab\\there"}'], 'ndjson');
    assert.deepEqual(got, [
      { line: 1, kind: 'custom_id', member: 'ana' },
      { line: 2, kind: 'install_id', member: 'i-1' },
      { line: 3, error: 'custom_id must be a string' },
      { line: 4, error: 'is not valid JSON' },
      { line: 5, error: 'must be a JSON object like {"custom_id": "…"}' },
      { line: 6, error: 'must have exactly one of custom_id, install_id' },
      { line: 7, error: 'custom_id must not contain control characters' },
    ]);
  });

  it('decodes UTF-8 split across chunks and refuses an endless line without holding it', async () => {
    const bytes = Buffer.from('custom_id\nélodie\n', 'utf8');
    const split = bytes.indexOf(0xa9); // inside "é"
    const long = 'x'.repeat(MAX_LINE_CHARS);
    const got = await rows([bytes.subarray(0, split), bytes.subarray(split), long, long, '\nok\n'], 'csv');
    assert.deepEqual(got, [
      { line: 2, kind: 'custom_id', member: 'élodie' },
      { line: 3, error: `is longer than ${MAX_LINE_CHARS} characters` },
      { line: 4, kind: 'custom_id', member: 'ok' },
    ]);
  });

  it('splits CSV fields', () => {
    assert.deepEqual(csvFields('a,"b,c",,"d""e"'), ['a', 'b,c', '', 'd"e']);
    assert.equal(csvFields('"a"b'), null);
  });
});
