/** `fleet`: the program (program.ts), its commands (commands/), and the exit code of a run. */
import { CommanderError } from 'commander';
import { CliError, EXIT } from './errors.js';
import { program } from './program.js';
import './commands/nodes.js';
import './commands/containers.js';
import './commands/logs.js';
import './commands/jobs.js';
import './commands/tasks.js';
import './commands/cloud.js';

// ------------------------------------------------------------------ entry

export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return EXIT.ok;
      return EXIT.usage;
    }
    if (error instanceof CliError) {
      console.error(`fleet: ${error.message}`);
      return error.code;
    }
    console.error(`fleet: ${(error as Error).stack ?? String(error)}`);
    return EXIT.error;
  }
}

process.exitCode = await main(process.argv);
