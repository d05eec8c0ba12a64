import { styleText } from 'node:util';

type Style = Parameters<typeof styleText>[0];

const colorful = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

function paint(style: Style) {
  return (text: string) => (colorful ? styleText(style, text) : text);
}

export const bold = paint('bold');
export const dim = paint('dim');
export const green = paint('green');
export const red = paint('red');
export const yellow = paint('yellow');
export const cyan = paint('cyan');

export const PASS = green('✓');
export const FAIL = red('✗');
export const SKIP = yellow('-');

/** Indents every line of a (possibly multi-line) message. */
export function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => (line ? pad + line : line))
    .join('\n');
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** Wraps prose at word boundaries to the given width. */
export function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join('\n');
}
