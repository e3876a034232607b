// Text for a terminal in lines of a given width, broken at spaces: `parafork run`'s table (a failed
// Task's whole message beneath its row) and the commands' --help.

/** `text` in lines of at most `width` characters, broken at spaces (a longer word stays whole). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}
