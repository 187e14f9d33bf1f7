#!/usr/bin/env node
/**
 * The `latchkey` CLI: a thin shell over @latchkey/client. Exit codes are documented in output.ts and
 * `latchkey --help`. No secret reaches stdout/stderr except the key (or wrapping token) a create or
 * rotate was asked for; the Vault token is never printed, not even in an error.
 */
import { Command, CommanderError } from 'commander';
import { LatchkeyClient } from '@latchkey/client';
import { loadConfig } from './config';
import { describeError, exitCodeFor, Exit } from './output';
import { buildProgram, type Runner } from './program';

/** Commands that work without a credential (public endpoints). */
const PUBLIC = new Set(['verify', 'ca']);

const run: Runner = async (cmd, fn) => {
  const g = cmd.optsWithGlobals<{ json?: boolean; url?: string }>();
  try {
    let client: LatchkeyClient | undefined;
    const lazyClient = () => {
      if (!client) {
        const cfg = loadConfig({ url: g.url, needCredential: !PUBLIC.has(cmd.name()) });
        client = new LatchkeyClient({ baseUrl: cfg.url, vaultToken: cfg.vaultToken, managementKey: cfg.managementKey });
      }
      return client;
    };
    const out = await fn(lazyClient, g);
    process.stdout.write(g.json ? JSON.stringify(out.json, null, 2) + '\n' : out.human);
    process.exitCode = out.exitCode ?? Exit.OK;
  } catch (err) {
    process.stderr.write(describeError(err, Boolean(g.json)) + '\n');
    process.exitCode = exitCodeFor(err);
  }
};

function exitCodeOfCommander(err: CommanderError): number {
  // --help and --version are not errors (commander's exitCode 0); every parse error (unknown option,
  // missing argument, a command group without its subcommand) is a usage error.
  return err.exitCode === 0 ? Exit.OK : Exit.USAGE;
}

async function main(argv: string[]): Promise<void> {
  const program: Command = buildProgram(run);
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = exitCodeOfCommander(err);
      return;
    }
    process.stderr.write(describeError(err, false) + '\n');
    process.exitCode = exitCodeFor(err);
  }
}

void main(process.argv);
