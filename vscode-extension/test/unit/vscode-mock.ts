// Just enough of the `vscode` API for the unit tests. Anything used is recorded so tests can
// look at it (status bar items, messages, registered commands).

type Listener<T> = (value: T) => unknown;

export class EventEmitter<T> {
  private listeners: Array<Listener<T>> = [];
  readonly event = (listener: Listener<T>): { dispose(): void } => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(value: T): void {
    for (const l of [...this.listeners]) {
      l(value);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum LogLevel {
  Off = 0,
  Trace = 1,
  Debug = 2,
  Info = 3,
  Warning = 4,
  Error = 5,
}

export enum UIKind {
  Desktop = 1,
  Web = 2,
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export enum ViewColumn {
  Active = -1,
  One = 1,
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class FakeStatusBarItem {
  text = '';
  tooltip: unknown = '';
  name: string | undefined;
  command: unknown;
  backgroundColor: ThemeColor | undefined;
  visible = false;
  disposed = false;
  constructor(
    readonly id: string,
    readonly alignment?: StatusBarAlignment,
    readonly priority?: number,
  ) {}
  show(): void {
    this.visible = true;
  }
  hide(): void {
    this.visible = false;
  }
  dispose(): void {
    this.disposed = true;
  }
}

export class FakeTerminal {
  sent: string[] = [];
  shown = false;
  constructor(readonly options: { name?: string }) {}
  show(): void {
    this.shown = true;
  }
  sendText(text: string): void {
    this.sent.push(text);
  }
}

export const recorded = {
  statusBarItems: [] as FakeStatusBarItem[],
  terminals: [] as FakeTerminal[],
  messages: [] as Array<{ kind: string; text: string }>,
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  reset(): void {
    this.statusBarItems.length = 0;
    this.terminals.length = 0;
    this.messages.length = 0;
    this.commands.clear();
  },
};

export const window = {
  createStatusBarItem(id: string, alignment?: StatusBarAlignment, priority?: number): FakeStatusBarItem {
    const item = new FakeStatusBarItem(id, alignment, priority);
    recorded.statusBarItems.push(item);
    return item;
  },
  showInformationMessage(text: string): Promise<undefined> {
    recorded.messages.push({ kind: 'info', text });
    return Promise.resolve(undefined);
  },
  showWarningMessage(text: string): Promise<undefined> {
    recorded.messages.push({ kind: 'warning', text });
    return Promise.resolve(undefined);
  },
  showErrorMessage(text: string): Promise<undefined> {
    recorded.messages.push({ kind: 'error', text });
    return Promise.resolve(undefined);
  },
  createTerminal(options: { name?: string }): FakeTerminal {
    const terminal = new FakeTerminal(options);
    recorded.terminals.push(terminal);
    return terminal;
  },
  withProgress<T>(_options: unknown, task: () => Promise<T>): Promise<T> {
    return task();
  },
};

export const commands = {
  registerCommand(id: string, fn: (...args: unknown[]) => unknown): { dispose(): void } {
    if (recorded.commands.has(id)) {
      throw new Error(`command '${id}' already exists`);
    }
    recorded.commands.set(id, fn);
    return { dispose: () => recorded.commands.delete(id) };
  },
  async executeCommand(id: string, ...args: unknown[]): Promise<unknown> {
    const fn = recorded.commands.get(id);
    if (!fn) {
      throw new Error(`command '${id}' not found`);
    }
    return fn(...args);
  },
};

export const Uri = {
  file: (fsPath: string) => ({ scheme: 'file', fsPath }),
};

export const env = { remoteName: undefined as string | undefined, uiKind: UIKind.Desktop };

export const version = '1.82.0-mock';
