/** The event the minute schedule's spot migration part once arrived as; kept for other producers. */
export const SCHEDULE_EVENT = 'novita.migration.schedule';
