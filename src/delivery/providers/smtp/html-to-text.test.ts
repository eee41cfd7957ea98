import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEntities } from './html-entities.ts';
import { htmlToText } from './html-to-text.ts';

describe('htmlToText', () => {
  it('keeps paragraphs, headings and line breaks, and collapses source whitespace', () => {
    const html =
      '<h1>Welcome</h1>\n  <p>Your   order\n has <b>shipped</b>.</p><div>Line one<br>Line two<br><br>Line four</div>';
    assert.equal(htmlToText(html), 'Welcome\n\nYour order has shipped.\n\nLine one\nLine two\n\nLine four');
  });

  it('prints links as "text (url)", once when the text is the url, and drops links nobody can follow', () => {
    assert.equal(
      htmlToText('<p>Read <a href="https://ex.example/a?x=1&amp;y=2">the guide</a>.</p>'),
      'Read the guide (https://ex.example/a?x=1&y=2).',
    );
    assert.equal(htmlToText('<a href="https://ex.example/">https://ex.example</a>'), 'https://ex.example');
    assert.equal(htmlToText('<a href="mailto:help@ex.example">help@ex.example</a>'), 'help@ex.example');
    assert.equal(
      htmlToText('<a href="https://ex.example/x"><img src="logo.png"></a>'),
      'https://ex.example/x',
    );
    assert.equal(
      htmlToText('<a href="#top">Back to top</a> <a href="javascript:alert(1)">Click</a>'),
      'Back to top Click',
    );
  });

  it('writes lists with bullets, numbers (honouring start) and nesting', () => {
    const html =
      '<ul><li>Apples</li><li>Pears<ul><li>Green</li><li>Red</li></ul></li></ul><ol start="3"><li>Three</li><li>Four</li></ol>';
    assert.equal(htmlToText(html), '- Apples\n- Pears\n  - Green\n  - Red\n\n3. Three\n4. Four');
  });

  it('decodes named and numeric entities, leaves unknown ones, and treats a stray "<" as text', () => {
    assert.equal(
      htmlToText('<p>Fish &amp; chips &copy; 2026 &#8364;5 &#x1F600; &nbsp;&bogus; 1 < 2</p>'),
      'Fish & chips © 2026 €5 😀 \u00a0&bogus; 1 < 2',
    );
    assert.equal(decodeEntities('&#0; &#xD800; &#1114112;'), '\uFFFD \uFFFD \uFFFD');
  });

  it('drops head, styles, scripts and comments, and shows image alt text', () => {
    const html =
      '<html><head><title>Hidden title</title><style>p { color: red }</style></head><body>' +
      '<!-- tracking --><script>document.write("x")</script><p>Shown <img src="a.png" alt="Logo"></p></body></html>';
    assert.equal(htmlToText(html), 'Shown Logo');
  });

  it('keeps preformatted text and lays out table rows as lines', () => {
    assert.equal(
      htmlToText(
        '<pre>  a\n    b</pre><table><tr><td>Item</td><td>Qty</td></tr><tr><td>Tea</td><td>2</td></tr></table>',
      ),
      '  a\n    b\n\nItem Qty\nTea 2',
    );
  });

  it('handles malformed input: an unterminated tag and everything after it are dropped', () => {
    assert.equal(htmlToText('<p>Before <a href="https://ex.example'), 'Before');
    assert.equal(htmlToText('plain text'), 'plain text');
    assert.equal(htmlToText(''), '');
  });

  it('finishes hostile input in one pass (no quadratic blow-up on a megabyte of tags)', () => {
    // Not a timing assertion: with quadratic behaviour these inputs take minutes and the test times out.
    const hostile = [
      '<'.repeat(500_000),
      '<a href="'.repeat(50_000),
      '<a href="https://x">y'.repeat(50_000),
      '<b>'.repeat(200_000),
    ];
    for (const input of hostile) assert.equal(typeof htmlToText(input), 'string');
  });
});
