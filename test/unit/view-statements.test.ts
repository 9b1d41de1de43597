import { describe, expect, it } from 'vitest';
import { singleStatementProblem, sqlStatements } from '../../functions/combine/views.ts';

const texts = (sql: string) => sqlStatements(sql).map((s) => s.text);

describe('sqlStatements (the view SQL rule: exactly one statement)', () => {
  it('splits at a top-level semicolon only', () => {
    expect(texts('SELECT 1; DROP TABLE t')).toEqual(['SELECT 1', 'DROP TABLE t']);
    expect(texts(`SELECT 'a;b', "we;ird", $$x;y$$, $tag$ $$; $tag$, E'it\\';s' FROM t`)).toHaveLength(1);
    expect(texts(`SELECT 'it''s;' FROM t -- a ; comment\n/* a /* nested ; */ comment; */ WHERE true`)).toHaveLength(1);
    expect(texts(`SELECT E'\\\\'; DROP TABLE t`)).toEqual([`SELECT E'\\\\'`, 'DROP TABLE t']);
    // not a dollar quote: a parameter, or a name with a $ in it
    expect(texts('SELECT a$b$; SELECT 2')).toEqual(['SELECT a$b$', 'SELECT 2']);
  });

  it('ignores empty statements and comments between them', () => {
    expect(texts(' ;SELECT 1;; -- done\n')).toEqual(['SELECT 1']);
    expect(singleStatementProblem('SELECT 1;')).toBeUndefined();
    expect(singleStatementProblem('-- nothing\n')).toEqual({ message: 'the SQL holds no statement', offset: 0 });
  });

  it('says where the second statement starts', () => {
    const sql = 'SELECT 1;\n  DELETE FROM t';
    const problem = singleStatementProblem(sql)!;
    expect(problem.message).toMatch(/holds 2 statements.*"DELETE FROM t"/);
    expect(sql.slice(problem.offset)).toBe('DELETE FROM t');
  });
});
