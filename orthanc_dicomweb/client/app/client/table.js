// A list of records shown as a table a page at a time: sortable columns, a total, and a pager
// above and below. On phones the CSS turns rows into cards, each value labelled by its column.
import { cell } from './api.js';

export const PAGE_SIZE = 20;

function compare(a, b) {
  if (a === b) return 0;
  if (a === '') return 1; // empty values last, whatever the direction
  if (b === '') return -1;
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' });
}

export class PagedTable {
  // columns: [{ key, label, value(record) -> text, sortValue?(record), descendingFirst? }]
  // options: { table, count, pagers: [elements], noun: ['study', 'studies'], idOf, before, after,
  //            sort: { key, descending } }
  constructor(options) {
    Object.assign(this, options);
    this.records = [];
    this.page = 0;
    this.renderHead();
    for (const pager of this.pagers) this.buildPager(pager);
  }

  show(records, overflow) {
    this.records = records;
    this.overflow = overflow;
    this.page = 0;
    this.sortRecords();
    this.render();
  }

  get pageCount() {
    return Math.max(1, Math.ceil(this.records.length / PAGE_SIZE));
  }

  renderHead() {
    const row = document.createElement('tr');
    if (this.before) row.append(this.before.head());
    for (const column of this.columns) {
      const th = document.createElement('th');
      th.dataset.key = column.key;
      const sort = document.createElement('button');
      sort.type = 'button';
      sort.className = 'sort';
      sort.textContent = column.label;
      sort.addEventListener('click', () => this.sortBy(column));
      th.append(sort);
      row.append(th);
    }
    if (this.after) row.append(document.createElement('th'));
    this.table.tHead.replaceChildren(row);
    this.markSorted();
  }

  markSorted() {
    for (const th of this.table.tHead.querySelectorAll('th[data-key]')) {
      const sorted = th.dataset.key === this.sort.key;
      th.setAttribute('aria-sort', sorted ? (this.sort.descending ? 'descending' : 'ascending') : 'none');
    }
  }

  sortBy(column) {
    const same = this.sort.key === column.key;
    this.sort = { key: column.key, descending: same ? !this.sort.descending : Boolean(column.descendingFirst) };
    this.sortRecords();
    this.page = 0;
    this.render();
  }

  sortRecords() {
    const column = this.columns.find((c) => c.key === this.sort.key);
    const valueOf = column.sortValue || column.value;
    const direction = this.sort.descending ? -1 : 1;
    const keyed = this.records.map((record) => [valueOf(record), record]);
    keyed.sort(([a], [b]) => (a === '' || b === '' ? compare(a, b) : direction * compare(a, b)));
    this.records = keyed.map(([, record]) => record);
    this.markSorted();
  }

  buildPager(pager) {
    const previous = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Previous', className: 'previous' });
    const position = Object.assign(document.createElement('span'), { className: 'page' });
    const next = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Next', className: 'next' });
    previous.addEventListener('click', () => this.turn(-1));
    next.addEventListener('click', () => this.turn(1));
    pager.replaceChildren(previous, position, next);
  }

  turn(step) {
    this.page = Math.min(Math.max(0, this.page + step), this.pageCount - 1);
    this.render();
  }

  render() {
    const first = this.page * PAGE_SIZE;
    const shown = this.records.slice(first, first + PAGE_SIZE);
    const [one, many] = this.noun;
    const total = this.records.length;
    this.count.textContent = total === 0 ? `No ${one} found`
      : `${first + 1}–${first + shown.length} of ${total}${this.overflow ? '+' : ''} ${total === 1 ? one : many}`;
    for (const pager of this.pagers) {
      pager.hidden = this.pageCount === 1;
      pager.querySelector('.page').textContent = `Page ${this.page + 1} of ${this.pageCount}`;
      pager.querySelector('.previous').disabled = this.page === 0;
      pager.querySelector('.next').disabled = this.page >= this.pageCount - 1;
    }
    this.table.tBodies[0].replaceChildren(...shown.map((record) => this.row(record)));
  }

  row(record) {
    const row = document.createElement('tr');
    row.dataset.uid = this.idOf(record);
    if (this.before) row.append(this.before.cell(record));
    row.append(...this.columns.map((column) => cell(column.value(record), column.label)));
    if (this.after) row.append(this.after(record));
    return row;
  }
}
